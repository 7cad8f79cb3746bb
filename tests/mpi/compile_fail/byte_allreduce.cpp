// Must not compile: std::byte moves through a transport but never reduces.
#include <terse/transport/mpi.hpp>

#include <cstddef>
#include <vector>

void reduce_bytes(terse::mpi_transport& transport, std::vector<std::byte>& bytes)
{
  transport.allreduce(terse::host_span<std::byte>(bytes), terse::reduce_op::sum);
}
