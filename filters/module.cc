// module.cc: loading a filter module and checking its ABI.
#include "filters/module.h"

#include <estafette/filter.h>

#include <Poco/Exception.h>
#include <Poco/SharedLibrary.h>

#include <cstddef>
#include <stdexcept>

#include "filters/native_filter.h"

namespace estafette::filters {

namespace {
// The size of the version-1 table: a module must provide at least this much.
constexpr std::size_t kFilterV1Size = offsetof(estafette_filter, fini) + sizeof(void (*)(void));
}  // namespace

Module::Module(Private, std::string path) : path_(std::move(path)) {}

Module::~Module() {
  if (table_ && table_->fini) table_->fini();
  table_ = nullptr;
  if (library_ && library_->isLoaded()) library_->unload();
}

std::shared_ptr<Module> Module::load(const std::string& path,
                                     const std::vector<std::string>& args) {
  auto m = std::make_shared<Module>(Private{}, path);
  const std::string what = "module " + path + ": ";
  m->library_ = std::make_unique<Poco::SharedLibrary>();
  try {
    // RTLD_LOCAL: two modules (each with its own copy of the libmilter shim) must not see each
    // other's symbols.
    m->library_->load(path, Poco::SharedLibrary::SHLIB_LOCAL);
  } catch (const Poco::Exception& e) {
    throw std::runtime_error(what + "cannot load: " + e.displayText());
  }
  if (!m->library_->hasSymbol(ESTAFETTE_FILTER_INIT_SYMBOL))
    throw std::runtime_error(what + "no symbol " ESTAFETTE_FILTER_INIT_SYMBOL
                                    " (not an Estafette filter module)");
  auto init = reinterpret_cast<estafette_filter_init_fn>(
      m->library_->getSymbol(ESTAFETTE_FILTER_INIT_SYMBOL));
  m->host_ = std::make_unique<HostTable>(path, args);
  const estafette_filter* table = init(&m->host_->host);
  if (!table) throw std::runtime_error(what + ESTAFETTE_FILTER_INIT_SYMBOL " refused to load");
  if (table->abi_version != ESTAFETTE_FILTER_ABI_VERSION)
    throw std::runtime_error(what + "ABI version " + std::to_string(table->abi_version) +
                             ", this esmtpd speaks " +
                             std::to_string(ESTAFETTE_FILTER_ABI_VERSION));
  if (table->struct_size < kFilterV1Size)
    throw std::runtime_error(what + "struct_size " + std::to_string(table->struct_size) +
                             " is smaller than the version-1 table (" +
                             std::to_string(kFilterV1Size) + ")");
  if (!table->name || !*table->name) throw std::runtime_error(what + "the filter has no name");
  m->table_ = table;
  m->name_ = table->name;
  return m;
}

std::unique_ptr<Filter> Module::open(event::Loop& loop, DefaultAction default_action,
                                     ModuleTimeouts timeouts) {
  return std::make_unique<NativeFilter>(loop, shared_from_this(), *table_, name_, default_action,
                                        timeouts);
}

}  // namespace estafette::filters
