// Must not compile: a device span through an MPI transport built without
// terse::cuda. The static_assert says to link terse::cuda.
#include <terse/transport/mpi.hpp>

void reduce_on_device(terse::mpi_transport& transport, float* device_pointer)
{
  transport.allreduce(terse::on_device(device_pointer, 16), terse::reduce_op::sum);
}
