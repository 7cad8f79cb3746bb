#pragma once
/// @file
/// Umbrella header for the topology library: graphs, their rounds, static
/// and time-varying topologies, planned topologies and clusters.

#include <terse/topology/graph.hpp>
#include <terse/topology/planner.hpp>
#include <terse/topology/round.hpp>
#include <terse/topology/static_graphs.hpp>
#include <terse/topology/time_varying.hpp>
