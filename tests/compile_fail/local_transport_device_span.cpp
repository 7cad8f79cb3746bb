// Must not compile: the local transport moves host memory only.
#include <terse/transport/local.hpp>

void use(terse::local_transport& t, float* device_pointer)
{
  t.allreduce(terse::on_device(device_pointer, 16), terse::reduce_op::sum);
}
