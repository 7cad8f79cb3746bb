// Must not compile: a schedule answers with terse::sync_action, not bool.
#include <terse/collective/allreduce.hpp>

struct yes_man {
  bool on_gradients(const terse::step_context&) { return true; }
  terse::sync_action on_parameters(const terse::step_context&) { return terse::sync_action::skip; }
};

void use(terse::local_transport& t)
{
  terse::allreduce<terse::compress::identity, terse::feedback::none, terse::local_transport, yes_man> sync(
      t, terse::layout::single(4));
}
