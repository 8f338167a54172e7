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

describe("memory profiles through libsprof", function ()
  -- allocates about 20 MB (2 MB/1000 rounds), at least 0.1 s of CPU
  local alloc_code = [[
local function NAME ()
  local t0, keep, n = os.clock(), {}, 0
  repeat
    for i = 1, 1000 do keep[i % 100 + 1] = { ("x"):rep(1000 + i % 50) .. i } end
    n = n + 1
  until n >= 1000 and os.clock() - t0 >= 0.1
  return #keep
end
print(NAME())
]]
  local function alloc_script (name) return h.script((alloc_code:gsub("NAME", name))) end
  local function share_of (stacks, total, name)
    return h.time_along(stacks, { name }) / total
  end

  it("reports the bytes a host's Lua allocates with sprof_options.memory, and gives the allocator back", function ()
    local r = h.run(bin("spec/memory_host"))
    assert.are.equal(0, r.status, r.err)
    assert.matches("allocator restored: yes", r.out)
    local text = r.out:match("== text\n(.-)== end")
    assert.is_truthy(text, r.out)
    assert.matches("Memory: allocated", text)
    local amount, unit, pct = text:match("([%d.]+) ([KMG]iB)%s+([%d.]+)%%%s+hoard")
    assert.is_truthy(amount, text)
    assert.is_true(unit ~= "KiB" and tonumber(pct) > 90, text)
    -- a host that wrapped our allocator keeps its wrapper after stop
    assert.matches("host wrapper kept: yes", r.out)
    -- lua_close while profiling memory: the profile ends there, no crash
    assert.matches("stop after close: refused", r.out)
    assert.matches("hoard recorded: yes", r.out)
  end)

  it("profiles memory in lua5.4 with SPROF_MEMORY=1 and sprof.auto", function ()
    local script = alloc_script("auto_alloc")
    local out = h.tmpfile(".json")
    local env = { LUA_INIT_5_4 = 'require "sprof.auto"', SPROF_OUTPUT = out,
                  LUA_PATH = h.root .. "/runtime/?.lua;;", SPROF_MEMORY = "1" }
    local plain = h.run("lua5.4 " .. h.quote(script))
    local r = h.run("lua5.4 " .. h.quote(script), env)
    assert.are.equal(0, r.status, r.err)
    assert.are.equal(plain.out, r.out)
    assert.are.equal("", r.err)
    local json = h.read(out)
    assert.matches('"memory_rate":524288[,}]', json)
    assert.matches('"alloc_bytes":', json)
    assert.matches('"name":"auto_alloc"', json)
    -- the rate alone turns it on; collapsed stacks weigh bytes
    out = h.tmpfile(".collapsed")
    env.SPROF_OUTPUT, env.SPROF_MEMORY, env.SPROF_MEMORY_RATE = out, nil, "65536"
    r = h.run("lua5.4 " .. h.quote(script), env)
    assert.are.equal(0, r.status, r.err)
    local stacks, total = h.collapsed(h.read(out))
    assert.is_true(share_of(stacks, total, "auto_alloc") > 0.9, h.read(out))
    assert.is_true(h.time_along(stacks, { "auto_alloc", "[table]" }) > 0, h.read(out))
  end)

  it("says which variable is wrong and profiles time only", function ()
    local script = alloc_script("auto_alloc")
    for _, bad in ipairs { { SPROF_MEMORY = "yes" }, { SPROF_MEMORY_RATE = "lots" },
                           { SPROF_MEMORY_RATE = "-1" } } do
      local name, value = next(bad)
      local out = h.tmpfile(".json")
      local env = { LUA_INIT_5_4 = 'require "sprof.auto"', SPROF_OUTPUT = out,
                    LUA_PATH = h.root .. "/runtime/?.lua;;", [name] = value }
      local r = h.run("lua5.4 " .. h.quote(script), env)
      assert.are.equal(0, r.status, r.err)
      local lines = select(2, r.err:gsub("\n", ""))
      assert.are.equal(1, lines, r.err)
      assert.matches(name .. " must be", r.err, 1, true)
      assert.matches(value, r.err, 1, true)
      local json = h.read(out)
      assert.matches('"name":"auto_alloc"', json)
      assert.is_nil(json:find('"memory_rate"', 1, true))
      -- the same through LD_PRELOAD
      out = h.tmpfile(".json")
      local preload = os.getenv("LD_PRELOAD")
      r = h.run(bin("spec/plain_host") .. " " .. h.quote(script),
                { LD_PRELOAD = (preload and preload .. " " or "") .. h.build .. "/libsprof.so",
                  SPROF_OUTPUT = out, [name] = value })
      assert.are.equal(0, r.status, r.err)
      assert.matches("sprof: " .. name .. " must be", r.err, 1, true)
      assert.is_nil(h.read(out):find('"memory_rate"', 1, true))
    end
  end)

  it("profiles memory in an unmodified program through LD_PRELOAD and SPROF_MEMORY=1", function ()
    local script = alloc_script("preloaded_alloc")
    local out = h.tmpfile(".collapsed")
    local preload = os.getenv("LD_PRELOAD")
    local r = h.run(bin("spec/plain_host") .. " " .. h.quote(script),
                    { LD_PRELOAD = (preload and preload .. " " or "") .. h.build .. "/libsprof.so",
                      SPROF_OUTPUT = out, SPROF_MEMORY = "1" })
    assert.are.equal(0, r.status, r.err)
    -- each state's own allocations: the one written at exit, and the
    -- one written at its lua_close
    for _, path in ipairs { out, (out:gsub("%.collapsed$", ".2.collapsed")) } do
      local text = h.read(path)
      assert.is_truthy(text, path)
      local stacks, total = h.collapsed(text)
      assert.is_true(share_of(stacks, total, "preloaded_alloc") > 0.9, text)
      assert.is_true(h.time_along(stacks, { "preloaded_alloc", "[string]" }) > 0, text)
    end
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
