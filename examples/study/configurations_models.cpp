// Local SGD: workers train on their own and average their models every H
// steps.
#include <terse/compress/identity.hpp>
#include <terse/feedback/none.hpp>
#include <terse/schedule/periodic.hpp>

#include "configuration.hpp"
#include "trainer.hpp"

namespace study {
namespace {

auto local_sgd(const configuration& c, const run_context&)
{
  using namespace terse;
  return policies<compress::identity, feedback::none, schedule::periodic>{
      {}, {}, schedule::periodic(static_cast<std::uint64_t>(c.knob("H")))};
}

}  // namespace

void add_model_configurations(std::vector<configuration>& list)
{
  for (const int period : {8, 32}) {
    list.push_back(make_configuration("local-H" + std::to_string(period),
                                      "local SGD: fp32 models averaged every H steps",
                                      {{"lr", 0.05}, {"momentum", 0.9}, {"H", period}}, local_sgd));
  }
}

}  // namespace study
