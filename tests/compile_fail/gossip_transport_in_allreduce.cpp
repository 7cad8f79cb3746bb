// Must not compile: allreduce needs collective verbs; this transport only
// has send and recv.
#include <terse/collective/allreduce.hpp>

#include <vector>

struct pair_link {
  int rank() const { return 0; }
  int size() const { return 2; }
  template <class T>
  void send(terse::host_span<const T>, int, int)
  {
  }
  template <class T>
  void recv(terse::host_span<T>, int, int)
  {
  }
};

void use(pair_link& link)
{
  terse::allreduce sync(link, terse::layout::single(4));
  std::vector<float> grads(4);
  sync.average(terse::host_span<float>(grads));
}
