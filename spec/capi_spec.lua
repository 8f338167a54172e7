-- The C API (libsprof, sprof.h) and profiling programs not built for it.
local h = require "spec.helper"

local function bin (name) return h.quote(h.build .. "/" .. name) end

local time_along = h.time_along

describe("libsprof", function ()
  it("shows a host's own C functions above the Lua functions they run", function ()
    local out = h.tmpfile(".collapsed")
    local r = h.run(bin("examples/host/host") .. " 1 " .. h.quote(out))
    assert.are.equal(0, r.status, r.err)
    local stacks, total = h.collapsed(h.read(out))
    local along = time_along(stacks, { "main", "game_loop", "tick", "think" })
    local spawn = time_along(stacks, { "main", "game_loop", "tick", "spawn", "^physics_step" })
    assert.is_true(along > 0.5 * total, h.read(out))
    assert.is_true(spawn > 0.05 * total, h.read(out))
  end)

  it("profiles two lua_States in two threads at once, each on its own", function ()
    local r = h.run(bin("spec/two_threads"))
    assert.are.equal(0, r.status, r.err)
    local a = r.out:match("== alpha_work\n(.-)== beta_work")
    local b = r.out:match("== beta_work\n(.*)$")
    assert.is_truthy(a and a:find("alpha_work", 1, true), r.out)
    assert.is_truthy(b and b:find("beta_work", 1, true), r.out)
    assert.is_nil(a:find("beta_work", 1, true))
    assert.is_nil(b:find("alpha_work", 1, true))
    local sa, ta = h.collapsed(a)
    assert.is_true(time_along(sa, { "alpha_work" }) > 0.5 * ta, a)
  end)

  it("survives lua_close under a running profiler, and sprof_free on one", function ()
    local r = h.run(bin("spec/close_running"))
    assert.are.equal(0, r.status, r.err)
    assert.matches("stop: sprof: the lua_State was closed %(lua_close%) while profiling", r.out)
    assert.matches("busy recorded: yes", r.out)
    assert.matches("free while running: ok", r.out)
  end)

  it("profiles an unmodified program linked with liblua5.4.so through LD_PRELOAD", function ()
    local script = h.script [[
local function preloaded_hot ()
  local t0, x = os.clock(), 0
  repeat for i = 1, 1e5 do x = x + i % 7 end until os.clock() - t0 >= 0.1
  return x
end
preloaded_hot()
]]
    local out = h.tmpfile(".collapsed")
    local preload = os.getenv("LD_PRELOAD")  -- a sanitizer runtime stays first
    local r = h.run(bin("spec/plain_host") .. " " .. h.quote(script),
                    { LD_PRELOAD = (preload and preload .. " " or "") .. h.build .. "/libsprof.so",
                      SPROF_OUTPUT = out })
    assert.are.equal(0, r.status, r.err)
    -- two states: the first written at exit, the second at its lua_close
    for _, path in ipairs { out, (out:gsub("%.collapsed$", ".2.collapsed")) } do
      local text = h.read(path)
      assert.is_truthy(text, path)
      local stacks = h.collapsed(text)
      -- of the time the state ran Lua (the first state also saw the
      -- second one run, and the host between them), most is the hot one
      local in_lua = time_along(stacks, { "(main chunk)" })
      assert.is_true(time_along(stacks, { "preloaded_hot" }) > 0.8 * in_lua, text)
    end
  end)

  it("profiles lua5.4 itself through LUA_INIT_5_4 and sprof.auto", function ()
    local code = [[
local function auto_hot ()
  local t0, x = os.clock(), 0
  repeat for i = 1, 1e5 do x = x + i % 7 end until os.clock() - t0 >= 0.1
  return x > 0
end
print(auto_hot())
]]
    local script = h.script(code)
    local out = h.tmpfile(".json")
    local env = { LUA_INIT_5_4 = 'require "sprof.auto"', SPROF_OUTPUT = out,
                  LUA_PATH = h.root .. "/runtime/?.lua;;" }
    local plain = h.run("lua5.4 " .. h.quote(script))
    local r = h.run("lua5.4 " .. h.quote(script), env)
    assert.are.equal(0, r.status, r.err)
    assert.are.equal(plain.out, r.out)
    local json = h.read(out)
    assert.matches('"format":"sprof%-session"', json)
    assert.matches('"name":"auto_hot"', json)
    -- also when the script ends through os.exit
    out = h.tmpfile(".collapsed")
    env.SPROF_OUTPUT = out
    local exiting = h.script((code:gsub("print%(auto_hot%(%)%)", "auto_hot() os.exit(4)")))
    r = h.run("lua5.4 " .. h.quote(exiting), env)
    assert.are.equal(4, r.status, r.err)
    assert.matches("auto_hot", h.read(out) or "")
  end)
end)

describe("LD_PRELOAD on a real server", function ()
  it("profiles lighttpd's mod_magnet scripts and writes at shutdown", function ()
    local report = h.tmpfile(".txt")
    local r = h.run("cd " .. h.quote(h.root) .. " && SPROF_LIB=" .. h.quote(h.build .. "/libsprof.so")
                    .. " examples/host/lighttpd-preload.sh " .. h.quote(report) .. " 40")
    assert.are.equal(0, r.status, r.out .. r.err)
    local text = h.read(report) or ""
    assert.matches("fib", text)
    assert.matches("mod_magnet%.so", text)          -- the host's path above Lua
    assert.matches("http_response_handler", text)
  end)
end)
