#pragma once
/// @file
/// A policy's saved state kept in memory, so a step that fails can put a
/// codec's state (DGC's thresholds, PowerSGD's warm-start Q) back as it was.
/// The bytes are reused from step to step: taking a snapshot of the same
/// size again allocates nothing.

#include <terse/core/state_io.hpp>

#include <ios>
#include <istream>
#include <memory>
#include <ostream>
#include <streambuf>
#include <vector>

namespace terse::detail {

/// A policy with state to save (`save(state_writer&) const`)...
template <class P>
concept saves_state = requires(const P& p, state_writer& out)
{
  p.save(out);
};

/// ...and to restore (`load(state_reader&)`).
template <class P>
concept loads_state = requires(P& p, state_reader& in)
{
  p.load(in);
};

class snapshot_buffer final : public std::streambuf {
 public:
  void start_writing() { bytes_.clear(); }
  void start_reading()
  {
    char* first = bytes_.data();
    setg(first, first, first + bytes_.size());
  }

 protected:
  int_type overflow(int_type ch) override
  {
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      bytes_.push_back(traits_type::to_char_type(ch));
    }
    return traits_type::not_eof(ch);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override
  {
    bytes_.insert(bytes_.end(), s, s + n);
    return n;
  }
  // Reading seeks within what was written (state_reader peeks at lengths).
  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode which) override
  {
    const off_type base = dir == std::ios_base::beg   ? 0
                          : dir == std::ios_base::cur ? gptr() - eback()
                                                      : egptr() - eback();
    return seekpos(pos_type(base + off), which);
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode which) override
  {
    const off_type at = pos;
    if ((which & std::ios_base::in) == 0 || at < 0 || at > egptr() - eback()) {
      return pos_type(off_type(-1));
    }
    setg(eback(), eback() + at, egptr());
    return pos;
  }

 private:
  std::vector<char> bytes_;
};

/// take() saves a policy's state; restore() loads it back.
class state_snapshot {
 public:
  template <class Policy>
  void take(const Policy& policy)
  {
    if (!streams_) {
      streams_ = std::make_unique<streams>();
    }
    streams_->buffer.start_writing();
    streams_->out.clear();
    state_writer writer(streams_->out);
    policy.save(writer);
  }

  template <class Policy>
  void restore(Policy& policy)
  {
    streams_->buffer.start_reading();
    streams_->in.clear();
    state_reader reader(streams_->in);
    policy.load(reader);
  }

 private:
  struct streams {
    snapshot_buffer buffer;
    std::ostream out{&buffer};
    std::istream in{&buffer};
  };
  std::unique_ptr<streams> streams_;  // streams do not move; the snapshot does
};

}  // namespace terse::detail
