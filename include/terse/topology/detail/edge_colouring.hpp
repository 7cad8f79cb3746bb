#pragma once
/// @file
/// Splits the arcs of an irregular graph into as few partial permutations as
/// possible. Senders and receivers form a bipartite graph, so by König's
/// theorem max(out-degree, in-degree) permutations suffice; each arc is placed
/// by the classic alternating-path recolouring.

#include <terse/topology/round.hpp>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace terse::topology::detail {

/// The arcs (distinct, no self loops, ranks in [0, world)) as permutations;
/// permutation c holds the arcs of colour c.
inline std::vector<permutation> colour_arcs(int world, const std::vector<edge>& arcs)
{
  const auto w = static_cast<std::size_t>(world);
  std::vector<std::size_t> out_degree(w), in_degree(w);
  for (const edge& a : arcs) {
    ++out_degree[static_cast<std::size_t>(a.from)];
    ++in_degree[static_cast<std::size_t>(a.to)];
  }
  std::size_t colours = 0;
  for (std::size_t r = 0; r < w; ++r) {
    colours = std::max({colours, out_degree[r], in_degree[r]});
  }
  std::vector<permutation> perms(colours, permutation{std::vector<int>(w, -1), std::vector<double>(w, 0.0)});
  std::vector<std::vector<int>> recv_from(colours, std::vector<int>(w, -1));  // the inverse of each permutation

  const auto free_send = [&](int rank) {
    std::size_t c = 0;
    while (perms[c].send_to[static_cast<std::size_t>(rank)] != -1) {
      ++c;
    }
    return c;
  };
  const auto free_recv = [&](int rank) {
    std::size_t c = 0;
    while (recv_from[c][static_cast<std::size_t>(rank)] != -1) {
      ++c;
    }
    return c;
  };
  const auto place = [&](int from, int to, std::size_t c, double weight) {
    perms[c].send_to[static_cast<std::size_t>(from)] = to;
    perms[c].weight[static_cast<std::size_t>(from)] = weight;
    recv_from[c][static_cast<std::size_t>(to)] = from;
  };
  const auto unplace = [&](int from, int to, std::size_t c) {
    perms[c].send_to[static_cast<std::size_t>(from)] = -1;
    recv_from[c][static_cast<std::size_t>(to)] = -1;
  };

  struct placed {
    int from;
    int to;
    std::size_t colour;
    double weight;
  };
  std::vector<placed> path;
  for (const edge& a : arcs) {
    const std::size_t free_at_sender = free_send(a.from);
    const std::size_t free_at_receiver = free_recv(a.to);
    if (recv_from[free_at_sender][static_cast<std::size_t>(a.to)] != -1) {
      // Swap colours a <-> b along the path from the receiver that alternates
      // a-arcs (into receivers) and b-arcs (out of senders); being bipartite,
      // it never reaches a.from, which lacks colour a.
      const std::size_t ca = free_at_sender;
      const std::size_t cb = free_at_receiver;
      path.clear();
      int receiver = a.to;
      while (true) {
        const int sender = recv_from[ca][static_cast<std::size_t>(receiver)];
        if (sender == -1) {
          break;
        }
        path.push_back({sender, receiver, ca, perms[ca].weight[static_cast<std::size_t>(sender)]});
        const int next = perms[cb].send_to[static_cast<std::size_t>(sender)];
        if (next == -1) {
          break;
        }
        path.push_back({sender, next, cb, perms[cb].weight[static_cast<std::size_t>(sender)]});
        receiver = next;
      }
      for (const placed& p : path) {
        unplace(p.from, p.to, p.colour);
      }
      for (const placed& p : path) {
        place(p.from, p.to, p.colour == ca ? cb : ca, p.weight);
      }
    }
    place(a.from, a.to, free_at_sender, a.weight);
  }
  return perms;
}

}  // namespace terse::topology::detail
