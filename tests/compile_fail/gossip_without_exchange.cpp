// Must not compile: gossip posts each round as one grouped exchange; this
// transport only has blocking send and recv.
#include <terse/collective/gossip.hpp>
#include <terse/topology/static_graphs.hpp>

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
  terse::gossip mix(link, 4, terse::topology::ring(2));
  std::vector<float> x(4);
  mix.mix(terse::host_span<float>(x));
}
