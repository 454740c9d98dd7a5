# fuzz.mk: the libFuzzer build behind `make fuzz`, read by GNU make together with the automake
# Makefile (make -f Makefile -f fuzz.mk), so it sees the same flags and source lists.
# The targets cannot link the gcc-built libraries (they lack libFuzzer's coverage
# instrumentation), so the library sources automake lists (FUZZ_LIBRARY_FILES) are compiled
# again with FUZZ_CXX, instrumented (-fsanitize=fuzzer-no-link) and with ASan and UBSan (any UB
# is fatal), into one archive; each target is its tests/fuzz/<name>_fuzz.cc linked with
# libFuzzer's main() and that archive (the linker takes only the objects a target uses).
# Everything goes under $(FUZZ_BUILD).
fuzz_obj := $(FUZZ_BUILD)/obj
fuzz_lib_objs := $(patsubst %.cc,$(fuzz_obj)/%.o,$(filter %.cc,$(FUZZ_LIBRARY_FILES)))
fuzz_target_objs := $(patsubst %,$(fuzz_obj)/tests/fuzz/%_fuzz.o,$(FUZZ_TARGETS))
fuzz_flags := -std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
  -fno-sanitize-recover=undefined -Wall -Wextra
fuzz_cppflags := $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) $(CPPFLAGS)
fuzz_libs := $(POCO_LIBS) $(CARES_LIBS) $(SSL_LIBS) $(CRYPT_LIBS) -lpthread

fuzz-binaries: $(patsubst %,$(FUZZ_BUILD)/%_fuzz,$(FUZZ_TARGETS))

$(FUZZ_BUILD)/libestafette_fuzz.a: $(fuzz_lib_objs)
	@rm -f $@
	$(AM_V_AR)$(AR) rcs $@ $^

$(fuzz_obj)/%.o: $(srcdir)/%.cc
	@mkdir -p $(@D)
	$(AM_V_CXX)$(FUZZ_CXX) $(fuzz_flags) -fsanitize=fuzzer-no-link $(fuzz_cppflags) -MMD -MP \
	  -c $< -o $@

$(FUZZ_BUILD)/%_fuzz: $(fuzz_obj)/tests/fuzz/%_fuzz.o $(FUZZ_BUILD)/libestafette_fuzz.a
	$(AM_V_CXXLD)$(FUZZ_CXX) $(fuzz_flags) -fsanitize=fuzzer $^ $(fuzz_libs) -o $@

.PHONY: fuzz-binaries
.SECONDARY: $(fuzz_target_objs)
-include $(fuzz_lib_objs:.o=.d) $(fuzz_target_objs:.o=.d)
