#pragma once
// A benchmark-only transport decorator: the thread CPU time this rank spends
// inside transport verbs (grouped exchanges: posting, testing and waiting). The local transport's verbs move and add
// data between ranks, work a real network would do instead; subtracting it from a rank's thread CPU time leaves the
// compression work. Thread CPU time (not wall time) keeps the figure honest when W ranks share two cores.

#include <terse/transport/detail/decorator_base.hpp>

#include <ctime>
#include <utility>

namespace terse::bench {

inline double thread_cpu_seconds()
{
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

template <class Inner>
class cpu_timed : public terse::detail::decorator_base<cpu_timed<Inner>, Inner> {
  using base = terse::detail::decorator_base<cpu_timed<Inner>, Inner>;
  friend base;

 public:
  explicit cpu_timed(Inner inner) : base(std::forward<Inner>(inner)) {}
  double seconds_in_verbs() const noexcept { return seconds_; }
  void reset() noexcept { seconds_ = 0; }

 private:
  template <class Forward>
  void intercept(const terse::detail::verb_call&, Forward& forward)
  {
    timed(forward);
  }
  // A grouped exchange's receives are copied while it is tested or waited for.
  template <class Forward>
  bool intercept_test(terse::exchange_id, Forward& forward)
  {
    return timed(forward);
  }
  template <class Forward>
  void intercept_wait(terse::exchange_id, Forward& forward)
  {
    timed(forward);
  }
  template <class Forward>
  decltype(auto) timed(Forward& forward)
  {
    const double start = thread_cpu_seconds();
    struct add_on_exit {
      double start;
      double& seconds;
      ~add_on_exit() { seconds += thread_cpu_seconds() - start; }
    } add{start, seconds_};
    return forward();
  }
  double seconds_ = 0;
};

template <class T>
cpu_timed(T&&) -> cpu_timed<T>;

}  // namespace terse::bench
