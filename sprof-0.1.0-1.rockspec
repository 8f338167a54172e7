-- From the checkout, offline:  luarocks --lua-version 5.4 --tree DIR make
-- installs require "sprof" (with sprof.auto, sprof.web) and sprof-lua;
-- with --lua-version 5.3 (or 5.1) the module for that Lua and
-- sprof-lua5.3 (sprof-lua5.1).
-- The C host library (libsprof, sprof.h, sprof.pc) is not in the rock:
-- cmake --install gives it (README, "Install").
rockspec_format = "3.0"
package = "sprof"
version = "0.1.0-1"
source = {
  url = "git+https://example.invalid/sprof.git",
  tag = "v0.1.0",
}
description = {
  summary = "A sampling profiler for Lua 5.4, 5.3 and 5.1, with Lua and native frames",
  detailed = [[
A sampling profiler for Lua 5.4, 5.3 and 5.1: the sprof-lua command runs a script as
lua5.4 would and reports where its time went as a call tree (text, HTML,
collapsed stacks, JSON, speedscope, pprof); require "sprof" profiles from
inside a program. Needs the Debian packages libcjson-dev libunwind-dev
libdw-dev zlib1g-dev (the build names any that is missing).
]],
}
supported_platforms = { "linux" }
dependencies = {
  "lua >= 5.1, < 5.5",  -- 5.2 is refused by the build, in one line
}
build = {
  type = "cmake",
  variables = {
    -- the rest (the man page) stays in the rock's own directory
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA_DIR = "$(LUA_DIR)",
    LIBDIR = "$(LIBDIR)",
    LUADIR = "$(LUADIR)",
    BINDIR = "$(BINDIR)",
    SPROF_LUA_ONLY = "ON",
  },
}
