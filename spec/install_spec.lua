-- Installs as a user makes them: cmake --install into a temporary prefix
-- (a C host built with pkg-config from it, the module, the command) and
-- luarocks make into a temporary tree; a build without a dependency names
-- the Debian package to install. Everything is written under one
-- temporary directory, removed at the end.
local h = require "spec.helper"
local q = h.quote

local root = h.tmpfile("-install")
assert(os.execute("mkdir -p " .. q(root)))
local count = 0

-- A new path under root.
local function fresh (name)
  count = count + 1
  return ("%s/%s%d"):format(root, name, count)
end

local function run_ok (cmd, env)
  local r = h.run(cmd, env)
  assert(r.status == 0, cmd .. "\n" .. r.out .. r.err)
  return r
end

local function real (dir)
  return run_ok("cd " .. q(dir) .. " && pwd -P").out:match("[^\n]+")
end

-- A Lua function busy for 'secs' of CPU time, and code that calls it.
local hot_spot = h.HOT_SPOT

-- Its share of a collapsed report (0 if the report does not name it).
local function hot_share (collapsed)
  local stacks, total = h.collapsed(collapsed)
  return total > 0 and h.time_in(stacks, "hot_spot") / total or 0
end

-- lua5.4 (or lua'version') finds the module and the Lua-side modules with
-- these paths: require "sprof" profiles, and so does LUA_INIT's require
-- "sprof.auto".
local function check_lua (path, cpath, module_dir, version)
  version = version or "5.4"
  local old = version == "5.1" or version == "luajit"  -- LUA_PATH, no suffix
  local suffix = old and "" or "_" .. version:gsub("%.", "_")
  local lua = version == "luajit" and "luajit" or "lua" .. version
  local env = { ["LUA_PATH" .. suffix] = path, ["LUA_CPATH" .. suffix] = cpath }
  local r = run_ok(lua .. " " .. q(h.script(hot_spot .. [[
local sprof = require "sprof"
print(package.searchpath and package.searchpath("sprof", package.cpath)
      or package.cpath:match("^(.*)/%?%.so") .. "/sprof.so")
local p = sprof.new()
p:start()
hot_spot(0.3)
p:stop()
io.write(p:output("collapsed"))
]])), env)
  local where, collapsed = r.out:match("^([^\n]*)\n(.*)$")
  assert.are.equal(module_dir .. "/sprof.so", where)
  assert.is_true(hot_share(collapsed) > 0.5, collapsed)

  local out = h.tmpfile(".collapsed")
  env["LUA_INIT" .. suffix] = 'require "sprof.auto"'
  env.SPROF_OUTPUT = out
  run_ok(lua .. " " .. q(h.script(hot_spot .. "hot_spot(0.3)\n")), env)
  local report = h.read(out) or ""
  assert.is_true(hot_share(report) > 0.5, report)
end

-- An installed sprof-lua runs a script with native frames (the spec's C
-- module, built with the project) and its Lua function.
local function check_command (sprof_lua)
  local r = run_ok(q(sprof_lua) .. " -r collapsed -o - " .. q(h.script(hot_spot .. [[
local crunch = require "crunch"
local function lua_caller () crunch.crunch(0.3) end
hot_spot(0.3)
lua_caller()
]])), { LUA_CPATH_5_4 = h.build .. "/spec/?.so",
        XDG_STATE_HOME = root .. "/state" })
  local stacks = h.collapsed(r.out)
  assert.is_true(hot_share(r.out) > 0.2, r.out)
  local in_crunch = h.time_in(stacks, "crunch.crunch")
  local inner = h.time_along(stacks, { "lua_caller", "crunch.crunch",
                                       "kernel_middle", "kernel_inner" })
  assert.is_true(in_crunch > 150000, r.out)
  assert.is_true(inner >= 0.9 * in_crunch, r.out)
end

-- The build's install directory for libraries (lib, or lib/<multiarch>).
local function build_libdir ()
  local cache = assert(h.read(h.build .. "/CMakeCache.txt"), "no build in " .. h.build)
  local libdir = cache:match("\nCMAKE_INSTALL_LIBDIR:PATH=([^\n]*)")
  assert(libdir and libdir:sub(1, 1) ~= "/", "CMAKE_INSTALL_LIBDIR is not relative")
  return libdir
end

local host_c = [[
#include <stdio.h>

#include <lauxlib.h>
#include <lualib.h>

#include <sprof.h>

int main (int argc, char **argv) {
  lua_State *L = luaL_newstate();
  sprof_profiler *p = sprof_new(L, NULL);
  (void)argc;
  luaL_openlibs(L);
  if (p == NULL || sprof_start(p) != 0) {
    fprintf(stderr, "host: %s\n", sprof_error(p));
    return 1;
  }
  if (luaL_dofile(L, argv[1]) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    return 1;
  }
  if (sprof_stop(p) != 0 || sprof_write(p, argv[2], "collapsed") != 0) {
    fprintf(stderr, "host: %s\n", sprof_error(p));
    return 1;
  }
  sprof_free(p);
  lua_close(L);
  return 0;
}
]]

describe("cmake --install into a temporary prefix", function ()
  local prefix = root .. "/prefix"
  local libdir

  lazy_setup(function ()
    libdir = prefix .. "/" .. build_libdir()
    run_ok("cmake --install " .. q(h.build) .. " --prefix " .. q(prefix))
  end)

  it("gives a sprof.pc with which pkg-config builds a host that profiles", function ()
    local env = { PKG_CONFIG_PATH = libdir .. "/pkgconfig" }
    local includedir = run_ok("pkg-config --variable=includedir sprof", env).out
    assert.are.equal(real(prefix .. "/include"), real(includedir:match("[^\n]+")))

    local source, host = h.tmpfile(".c"), h.tmpfile("")
    local f = assert(io.open(source, "w"))
    f:write(host_c)
    f:close()
    run_ok(("cc -o %s %s $(pkg-config --cflags --libs sprof lua5.4)")
           :format(q(host), q(source)), env)

    local report = h.tmpfile(".collapsed")
    run_ok(("%s %s %s"):format(q(host), q(h.script(hot_spot .. "hot_spot(0.3)\n")),
                               q(report)),
           { LD_LIBRARY_PATH = libdir })
    local collapsed = h.read(report) or ""
    assert.is_true(hot_share(collapsed) > 0.5, collapsed)
  end)

  it("gives the module and the Lua-side modules to lua5.4", function ()
    check_lua(prefix .. "/share/lua/5.4/?.lua", prefix .. "/lib/lua/5.4/?.so",
              prefix .. "/lib/lua/5.4")
  end)

  it("gives a sprof-lua that shows Lua and native frames", function ()
    check_command(prefix .. "/bin/sprof-lua")
  end)

  -- the build makes them when liblua5.3-dev and liblua5.1-0-dev are there
  for _, v in ipairs { "5.3", "5.1" } do
    local built = h.read(h.build .. "/CMakeCache.txt"):find("LUA" .. v:gsub("%.", "") .. "_FOUND:INTERNAL=1", 1, true)
    local test = built and it or pending
    test("gives Lua " .. v .. " its module, Lua-side modules and sprof-lua" .. v, function ()
      check_lua(prefix .. "/share/lua/" .. v .. "/?.lua", prefix .. "/lib/lua/" .. v .. "/?.so",
                prefix .. "/lib/lua/" .. v, v)
      local r = run_ok(q(prefix .. "/bin/sprof-lua" .. v) .. " -r collapsed -o - "
                       .. q(h.script(hot_spot .. "hot_spot(0.3)\n")),
                       { XDG_STATE_HOME = root .. "/state" })
      assert.is_true(hot_share(r.out) > 0.5, r.out)
    end)

    test("gives a sprof-" .. v .. ".pc with which pkg-config builds a Lua " .. v .. " host", function ()
      local env = { PKG_CONFIG_PATH = libdir .. "/pkgconfig" }
      local source, host = h.tmpfile(".c"), h.tmpfile("")
      local f = assert(io.open(source, "w"))
      f:write((host_c:gsub("LUA_OK", "0")))
      f:close()
      run_ok(("cc -o %s %s $(pkg-config --cflags --libs sprof-%s)")
             :format(q(host), q(source), v), env)
      local report = h.tmpfile(".collapsed")
      run_ok(("%s %s %s"):format(q(host), q(h.script(hot_spot .. "hot_spot(0.3)\n")),
                                 q(report)),
             { LD_LIBRARY_PATH = libdir })
      local collapsed = h.read(report) or ""
      assert.is_true(hot_share(collapsed) > 0.5, collapsed)
    end)
  end

  -- LuaJIT shares lib/lua/5.1 with Lua 5.1: its build is sprof_luajit.so
  -- there, and 5.1's sprof.so opens it when LuaJIT requires "sprof"
  local jit_built = h.read(h.build .. "/CMakeCache.txt"):find("LUAluajit_FOUND:INTERNAL=1", 1, true)
  local jit_test = jit_built and h.run("command -v luajit").status == 0 and it or pending
  jit_test("gives LuaJIT its module beside 5.1's, the Lua-side modules and sprof-luajit", function ()
    assert.is_truthy(h.read(prefix .. "/lib/lua/5.1/sprof_luajit.so"))
    check_lua(prefix .. "/share/lua/5.1/?.lua", prefix .. "/lib/lua/5.1/?.so",
              prefix .. "/lib/lua/5.1", "luajit")
    local r = run_ok(q(prefix .. "/bin/sprof-luajit") .. " -r collapsed -o - "
                     .. q(h.script(hot_spot .. "hot_spot(0.3)\n")),
                     { XDG_STATE_HOME = root .. "/state" })
    assert.is_true(hot_share(r.out) > 0.5, r.out)
    assert.matches("%[jit compiled%]", r.out)
  end)

  it("names no fixed prefix nor the build in sprof.pc and the Lua modules", function ()
    local r = h.run(("grep -rl -e %s -e /usr/local %s %s"):format(
      q(h.build), q(libdir .. "/pkgconfig/sprof.pc"), q(prefix .. "/share/lua/5.4/sprof")))
    assert.are.equal(1, r.status, r.out .. r.err)  -- 1: read, and nothing found
  end)
end)

-- A pkg-config directory with all the system's packages but those whose
-- file matches 'pattern' (a shell pattern).
local function pkg_config_without (pattern)
  local dir = fresh("pkgconfig")
  run_ok(("mkdir -p %s && dirs=${PKG_CONFIG_PATH:-}:"
          .. "$(pkg-config --variable pc_path pkg-config) && IFS=: && for d in $dirs; do"
          .. " for f in \"$d\"/*.pc; do b=${f##*/}; case $b in %s) continue;; esac;"
          .. " [ -e \"$f\" ] && [ ! -e %s/\"$b\" ] && ln -s \"$f\" %s/\"$b\"; done; done; true")
         :format(q(dir), pattern, q(dir), q(dir)))
  return { PKG_CONFIG_LIBDIR = dir, PKG_CONFIG_PATH = "" }
end

-- A copy of the checkout's files (tracked, and new ones not ignored):
-- luarocks builds in the source directory.
local function copy_sources (dest)
  assert(h.run("git -C " .. q(h.root) .. " rev-parse --git-dir").status == 0,
         "the LuaRocks specs copy the sources with git: run them in a git checkout")
  run_ok(("mkdir -p %s && cd %s && git ls-files --cached --others --exclude-standard"
          .. " | grep -v '^build\\.luarocks/' | while IFS= read -r f; do"
          .. " [ -e \"$f\" ] && printf '%%s\\n' \"$f\"; done"
          .. " | tar -cf - --verbatim-files-from -T - | tar -xf - -C %s")
         :format(q(dest), q(h.root), q(dest)))
end

-- luarocks as the README runs it, with a HOME of its own.
local function luarocks (dir, tree, args, env, version)
  env = env or {}
  env.HOME = root .. "/home"
  env.CMAKE_BUILD_PARALLEL_LEVEL = "2"
  return h.run(("mkdir -p %s && cd %s && luarocks --lua-version %s --tree %s %s")
               :format(q(env.HOME), q(dir), version or "5.4", q(tree), args), env)
end

describe("luarocks make", function ()
  local tree = root .. "/tree"

  -- with Lua as LuaRocks knows it (LUA_INCDIR), not through pkg-config:
  -- a Lua built from source may have no pkg-config file
  lazy_setup(function ()
    local src = fresh("rock")
    copy_sources(src)
    local r = luarocks(src, tree, "make", pkg_config_without("lua*"))
    assert(r.status == 0, r.out .. r.err)
  end)

  it("installs the module, the Lua-side modules and sprof-lua, not libsprof", function ()
    local r = run_ok("cd " .. q(tree) .. " && find bin lib/lua share -type f | sort")
    assert.are.equal("bin/sprof-lua\nlib/lua/5.4/sprof.so\n"
                     .. "share/lua/5.4/sprof/auto.lua\nshare/lua/5.4/sprof/web.lua\n",
                     r.out)
  end)

  it("gives lua5.4 the module with the paths of luarocks path", function ()
    local path = luarocks(root, tree, "path --lr-path").out:match("[^\n]+")
    local cpath = luarocks(root, tree, "path --lr-cpath").out:match("[^\n]+")
    check_lua(path, cpath, tree .. "/lib/lua/5.4")
  end)

  it("gives a sprof-lua that shows Lua and native frames", function ()
    check_command(tree .. "/bin/sprof-lua")
  end)
end)

describe("luarocks --lua-version 5.3 make", function ()
  local tree = root .. "/tree53"
  local has_53 = h.run("pkg-config --exists lua5.3").status == 0
  local test = has_53 and it or pending

  lazy_setup(function ()
    if not has_53 then return end
    local src = fresh("rock")
    copy_sources(src)
    local r = luarocks(src, tree, "make", pkg_config_without("lua*"), "5.3")
    assert(r.status == 0, r.out .. r.err)
  end)

  test("installs the 5.3 module, the Lua-side modules and sprof-lua5.3", function ()
    local r = run_ok("cd " .. q(tree) .. " && find bin lib/lua share -type f | sort")
    assert.are.equal("bin/sprof-lua5.3\nlib/lua/5.3/sprof.so\n"
                     .. "share/lua/5.3/sprof/auto.lua\nshare/lua/5.3/sprof/web.lua\n",
                     r.out)
  end)

  test("gives lua5.3 the module with the paths of luarocks path", function ()
    local path = luarocks(root, tree, "path --lr-path", nil, "5.3").out:match("[^\n]+")
    local cpath = luarocks(root, tree, "path --lr-cpath", nil, "5.3").out:match("[^\n]+")
    check_lua(path, cpath, tree .. "/lib/lua/5.3", "5.3")
  end)
end)

-- The output has this line (but for the indentation) and no CMake stack.
local function says (r, line)
  local all = r.out .. r.err
  local found = false
  for l in all:gmatch("[^\n]+") do
    if l:match("^%s*(.-)%s*$") == line then found = true end
  end
  assert.is_true(found, all)
  assert.is_nil(all:find("Call Stack", 1, true), all)
  assert.are_not.equal(0, r.status)
end

describe("a build without a dependency", function ()
  it("names the Debian package in one line", function ()
    local r = h.run(("cmake -S %s -B %s"):format(q(h.root), q(fresh("build"))),
                    pkg_config_without("libunwind.pc"))
    says(r, "sprof needs libunwind: apt-get install libunwind-dev")
  end)

  it("names all the missing packages in one line", function ()
    local r = h.run(("cmake -S %s -B %s"):format(q(h.root), q(fresh("build"))),
                    { PKG_CONFIG_LIBDIR = fresh("nothing"), PKG_CONFIG_PATH = "" })
    says(r, "sprof needs lua5.4, libcjson, libunwind, libdw, zlib: apt-get install"
            .. " liblua5.4-dev libcjson-dev libunwind-dev libdw-dev zlib1g-dev")
  end)

  it("names the package through luarocks make too", function ()
    local src = fresh("rock")
    copy_sources(src)
    local r = luarocks(src, fresh("tree"), "make",
                       pkg_config_without("libunwind.pc"))
    says(r, "sprof needs libunwind: apt-get install libunwind-dev")
  end)
end)

teardown(function ()
  os.execute("rm -rf " .. q(root))
end)
