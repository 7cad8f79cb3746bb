#pragma once
// The step of detail::allreduce_engine (allreduce_engine.hpp): starting
// buckets, progress, completion, commit and rollback.

namespace terse::detail {

template <class C, class F, class T>
void allreduce_engine<C, F, T>::begin_step(policies& p)
{
  in_step_ = true;
  started_count_ = 0;
  failure_ = nullptr;
  std::fill(started_.begin(), started_.end(), char{0});
  for (step_unit& u : units_) {
    u.stage = unit_stage::idle;
  }
  if constexpr (saves_state<C> && loads_state<C>) {
    codec_before_.take(p.codec);
  }
  if (sends_.capacity() < static_cast<std::size_t>(p.transport.size())) {
    sends_.reserve(static_cast<std::size_t>(p.transport.size()));
    recvs_.reserve(static_cast<std::size_t>(p.transport.size()));
  }
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::start(policies p, const layout& shape, std::size_t bucket, host_span<float> values)
{
  TERSE_EXPECTS(bucket < shape.buckets().size(), "bucket " + std::to_string(bucket) + " is not in the layout (" +
                                                     std::to_string(shape.buckets().size()) + " buckets)");
  TERSE_EXPECTS(values.size() == shape.buckets()[bucket].count,
                "bucket " + std::to_string(bucket) + " has " + std::to_string(shape.buckets()[bucket].count) +
                    " elements but " + std::to_string(values.size()) + " were passed");
  if (!in_step_) {
    begin_step(p);
  }
  TERSE_EXPECTS(!started_[bucket], "bucket " + std::to_string(bucket) + " was already started this step");
  started_[bucket] = 1;
  ++started_count_;
  values_[bucket] = values;
  if constexpr (whole_gradient) {
    if (holds_whole_gradient(p.feedback)) {
      // The feedback needs every bucket before it compensates any: hold the
      // units until the last bucket arrives.
      parts_[bucket] = host_span<const float>(values);
      if (started_count_ < started_.size()) {
        return;
      }
      p.feedback.begin_step(std::span<const host_span<const float>>(parts_), p.transport.size());
      for (step_unit& u : units_) {
        launch_or_poison(p, shape, u);
      }
      poll(p);
      return;
    }
  }
  for (step_unit& u : units_) {
    if (u.bucket == bucket) {
      launch_or_poison(p, shape, u);
    }
  }
  poll(p);
}

// A unit whose local work raises before its first exchange is posted (a
// codec refusing its arguments, say) still takes part, poisoned, so peers
// fail at once; the error is raised by wait_all, after the step drained.
template <class C, class F, class T>
void allreduce_engine<C, F, T>::launch_or_poison(policies& p, const layout& shape, step_unit& u)
{
  try {
    launch(p, shape, u);
  } catch (const error&) {
    if (!failure_) {
      failure_ = std::current_exception();
    }
    u.failed = true;
    if (u.stage == unit_stage::idle) {
      poison(p, shape, u);
    }
  }
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::poll(policies p)
{
  for (step_unit& u : units_) {
    if (u.stage == unit_stage::exchanging) {
      drive(p, u, false);
    }
  }
}

// Tests (or waits for) the unit's exchange and runs the work after it. A
// transport error marks the unit failed; the step raises it at the end.
template <class C, class F, class T>
void allreduce_engine<C, F, T>::drive(policies& p, step_unit& u, bool block)
{
  while (u.stage == unit_stage::exchanging) {
    try {
      if (block) {
        p.transport.wait(u.pending);
      } else if (!p.transport.test(u.pending)) {
        return;
      }
      u.stage = unit_stage::done;  // the id is spent; posting the next phase makes it exchanging again
      advance(p, u);
    } catch (const error&) {
      if (!failure_) {
        failure_ = std::current_exception();
      }
      u.failed = true;
      u.stage = unit_stage::done;
      return;
    }
  }
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::finish(policies p, const layout& shape)
{
  if (!in_step_) {
    begin_step(p);  // nothing started here: every bucket is missing, and peers are told
  }
  const auto first_missing = std::find(started_.begin(), started_.end(), char{0});
  const auto missing = static_cast<std::size_t>(first_missing - started_.begin());
  for (step_unit& u : units_) {
    if (u.stage == unit_stage::idle) {
      poison(p, shape, u);  // peers learn of it instead of waiting out their deadline
    }
  }
  for (step_unit& u : units_) {
    drive(p, u, true);
  }
  if constexpr (self_reducing) {
    if (missing == shape.buckets().size() && !failure_) {
      for (step_unit& u : units_) {
        if (u.stage == unit_stage::waiting) {
          run_self_reducing(p, u);
        }
      }
    }
  }
  frame_status status = frame_status::ok;
  for (const step_unit& u : units_) {
    status = worst(status, u.failed ? frame_status::ok : u.status);
  }
  if (missing == shape.buckets().size() && !failure_ && status == frame_status::ok) {
    commit(p, shape);
    end_step();
    return;
  }
  if constexpr (saves_state<C> && loads_state<C>) {
    codec_before_.restore(p.codec);
  }
  const std::exception_ptr failure = failure_;
  end_step();
  TERSE_CHECK(missing == shape.buckets().size(), errc::mismatch,
              "wait_all: bucket " + std::to_string(missing) +
                  " was never started on this rank; every rank must start every bucket each step");
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const error& e) {
      if (e.code() == errc::mismatch) {
        TERSE_FAIL(errc::mismatch, std::string("allreduce: the ranks disagree about this step (a rank did not start "
                                               "every bucket, or buckets differ in size): ") +
                                       e.what());
      }
      throw;
    }
  }
  raise_status(status, "allreduce");
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::end_step() noexcept
{
  in_step_ = false;
  failure_ = nullptr;
  for (step_unit& u : units_) {
    u.stage = unit_stage::idle;
    u.failed = false;
    u.status = frame_status::ok;
  }
}

// Every result is final and every rank agreed: make it visible.
template <class C, class F, class T>
void allreduce_engine<C, F, T>::commit(policies& p, const layout& shape)
{
  for (step_unit& u : units_) {
    const bucket& b = shape.buckets()[u.bucket];
    const host_span<float> values = values_[u.bucket];
    if (u.kind == unit_kind::dense) {
      std::size_t at = 0;
      for (const segment& seg : shape.segments_of(b)) {
        if (u.whole_bucket || !seg.compressed) {
          const std::size_t count = u.whole_bucket ? b.count : seg.count;
          std::copy_n(u.result.data() + at, count, values.data() + (u.whole_bucket ? 0 : seg.offset - b.offset));
          at += count;
          if (u.whole_bucket) {
            break;
          }
        }
      }
      continue;
    }
    const segment& seg = shape.segments()[u.segment];
    const host_span<const float> result(u.result.data(), u.count);
    if (u.reselected) {
      keep_reselection_error(p, u, false);
    }
    if (u.flush) {
      p.feedback.commit(seg.id, u.compensated, u.compensated);
    } else if constexpr (stages_residual<F>) {
      if (u.fused) {
        p.feedback.commit_staged(seg.id);
      } else {
        p.feedback.commit(seg.id, u.compensated,
                          self_reducing ? result : host_span<const float>(u.own_decoded.data(), u.count));
      }
    } else if constexpr (F::stateful) {
      p.feedback.commit(seg.id, u.compensated,
                        self_reducing ? result : host_span<const float>(u.own_decoded.data(), u.count));
    }
    if (u.reselected) {
      keep_reselection_error(p, u, true);
    }
    std::copy_n(u.result.data(), u.count, values.data() + (seg.offset - b.offset));
  }
}

template <class C, class F, class T>
void allreduce_engine<C, F, T>::post(policies& p, step_unit& u, int phase)
{
  u.phase = phase;
  if (sends_.empty() && recvs_.empty()) {
    advance(p, u);  // a world of one: nothing to wait for
    return;
  }
  u.pending = p.transport.start_exchange(host_span<const outgoing<>>(sends_), host_span<const incoming<>>(recvs_),
                                         u.tag + (phase & 1));
  u.stage = unit_stage::exchanging;
}

// After the exchange of the current phase completed.
template <class C, class F, class T>
void allreduce_engine<C, F, T>::advance(policies& p, step_unit& u)
{
  const bool dense = u.kind == unit_kind::dense || u.flush;
  if (dense) {
    if (u.phase == 0) {
      fold_and_allgather<float>(p, u, u.flush ? u.compensated : u.input, u.result.data());
    } else {
      finish_dense(p, u);
    }
    return;
  }
  if constexpr (reduces_in_parts) {
    staged_advance(p, u);
  } else if constexpr (self_reducing || !compresses) {
    TERSE_FAIL(errc::internal, "allreduce: this unit has no compressed exchange phases");
  } else if constexpr (C::aggregation_kind == aggregation::summable) {
    using wire_t = typename C::wire_type;
    if (u.phase == 0) {
      const auto* local = reinterpret_cast<const wire_t*>(u.send.data());
      fold_and_allgather<wire_t>(p, u, host_span<const wire_t>(local, wire_elements(p, u)),
                                 reinterpret_cast<wire_t*>(u.owner.data()));
    } else {
      finish_summable(p, u);
    }
  } else if constexpr (C::aggregation_kind == aggregation::requantizable) {
    if (u.phase == 0) {
      requantize_owner(p, u);
    } else {
      requantize_end(p, u);
    }
  } else if (p.sparse_reduce_scatter) {
    sparse_advance(p, u);
  } else {
    if (u.phase == 0) {
      gather_payloads(p, u);
    } else {
      gather_end(p, u);
    }
  }
}

// A unit of a bucket this rank never started: take part in its first
// exchange with messages one byte longer than expected, so every peer gets
// errc::mismatch at once, and receive what peers sent so nothing is left
// queued for the next step.
template <class C, class F, class T>
void allreduce_engine<C, F, T>::poison(policies& p, const layout& shape, step_unit& u)
{
  const int world = p.transport.size();
  const int rank = p.transport.rank();
  sends_.clear();
  recvs_.clear();
  if (world == 1) {
    u.stage = unit_stage::done;
    return;
  }
  bool flushing = false;  // on a flush step peers send compensated floats for every unit
  if constexpr (flushes<F>) {
    flushing = p.feedback.flush_due(p.step);
  }
  if (u.kind == unit_kind::compressed) {
    flushing = flushing || p.dense_this_step(static_cast<bucket_id>(u.segment));  // segment ids are their indices
  }
  // In parts, the peers' first phase averages the codec's first span.
  std::size_t factors = 0;
  if constexpr (reduces_in_parts) {
    if (u.kind == unit_kind::compressed && !flushing) {
      factors = staged_first_count(p, shape, u);
      if (factors == 0) {
        u.stage = unit_stage::done;  // nothing to average: the peers send nothing either
        return;
      }
    }
  }
  // Bytes rank `r` expects from each peer in phase 0, and this rank's room.
  const auto expected = [&](int r) -> std::size_t {
    if (u.kind == unit_kind::dense || !compresses || flushing) {
      return block_of(u.count, world, r).count * sizeof(float);
    }
    if constexpr (reduces_in_parts) {
      return block_of(factors, world, r).count * sizeof(float);
    } else if constexpr (self_reducing || !compresses) {
      return 0;
    } else if constexpr (C::aggregation_kind == aggregation::summable) {
      return block_of(wire_elements(p, u), world, r).count * sizeof(typename C::wire_type);
    } else if constexpr (C::aggregation_kind == aggregation::requantizable) {
      return frame_room(p, u, 0);
    } else {
      return p.sparse_reduce_scatter && fixed_size ? frame_room(p, u, r) : sizeof(std::uint64_t);
    }
  };
  if constexpr (self_reducing && !reduces_in_parts) {
    if (u.kind == unit_kind::compressed && !flushing) {
      // Its blocking allreduces are skipped here; peers skip theirs when
      // another unit's poisoning reached them, and otherwise wait out the
      // transport's deadline (docs/collectives.md).
      u.stage = unit_stage::done;
      return;
    }
  }
  std::size_t longest = 0;
  for (int r = 0; r < world; ++r) {
    longest = std::max(longest, expected(r));
  }
  std::byte* junk = at_least(poison_bytes_, (longest + 1) * static_cast<std::size_t>(world + 1));
  std::byte* sink = junk + longest + 1;
  for (int r = 0; r < world; ++r) {
    if (r != rank) {
      sends_.push_back(outgoing<>{r, host_span<const std::byte>(junk, expected(r) + 1)});
      recvs_.push_back(
          incoming<>{r, host_span<std::byte>(sink + static_cast<std::size_t>(r) * (longest + 1), expected(rank))});
    }
  }
  u.status = frame_status::ok;
  try {
    p.transport.wait(
        p.transport.start_exchange(host_span<const outgoing<>>(sends_), host_span<const incoming<>>(recvs_), u.tag));
  } catch (const error&) {
    if (!failure_) {
      failure_ = std::current_exception();
    }
  }
  u.stage = unit_stage::done;
}

}  // namespace terse::detail
