// filter.cc: what every filters::Filter has by default (see filter.h).
#include "filters/filter.h"

#include <cstddef>
#include <utility>

namespace estafette::filters {

namespace {
// One header() after the other; each answers later, so this never recurses within one turn.
void header_from(Filter& filter, const HeaderFields& fields, std::size_t i, Filter::Callback done) {
  const auto& [name, value] = fields[i];
  filter.header(name, value,
                [&filter, &fields, i, done = std::move(done)](const Verdict& v) mutable {
                  if (v.action != Verdict::Action::Continue || i + 1 == fields.size())
                    done(v);
                  else
                    header_from(filter, fields, i + 1, std::move(done));
                });
}
}  // namespace

void Filter::headers(const HeaderFields& fields, Callback done) {
  // Never called with no fields (filter.h); a caller that did gets a failure, not a crash.
  if (fields.empty()) {
    done(Verdict{Verdict::Action::Failed, "filter " + name() + ": no header fields", name()});
    return;
  }
  header_from(*this, fields, 0, std::move(done));
}

}  // namespace estafette::filters
