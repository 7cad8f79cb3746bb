#pragma once
/// @file
/// Every schedule on device buffers: include this header in a translation
/// unit compiled by nvcc and pass device spans to fda, event_triggered,
/// adaptive_interval, slowmo and bmuf (directly, or through a collective's
/// on_parameters / on_gradients with the trainer's stream). The deltas,
/// monitored sums, sketches and outer steps run as kernels on that stream,
/// in the same fixed orders as the host path (schedule/detail/blocked_sum.hpp),
/// so both take the same decisions and leave the same bits. A step waits
/// for the device at most once (to read the values it monitors); buffers
/// are sized on the first step and reused after. The averager must offer
/// `average(device_span<float>, stream_ref)` (terse::allreduce over a
/// device transport does) and `monitor(host_span<double>, reduce_op)`.
///
/// A schedule's device vectors live beside its host state: save() and
/// load() cover the host path only (a schedule that ran on device buffers
/// raises errc::unsupported from save()). A failed exchange leaves the
/// schedule as it was (device vectors change only after it, host fields
/// are put back), as on the host path.

#include <terse/cuda/detail/schedule_device.cuh>
#include <terse/cuda/detail/schedule_outer.cuh>
