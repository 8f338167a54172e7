-- Memory profiles that leave sprof: pprof as Go's heap profiles, read by
-- `go tool pprof`; the JSON session, which keeps every memory number and
-- loads back. (speedscope: spec/browser/speedscope.test.mjs)
local h = require "spec.helper"
local sprof = require "sprof"
local json = require "dkjson"

-- keep holds on to the strings it makes (in a global table); drop makes
-- tables and lets them go. A script that profiles itself for 0.3 s of CPU
-- and writes its profile as JSON and as pprof (each view) to arg[1].*
local MEMORY = [[
local sprof = require "sprof"
kept = {}
local function keep () local t = {} for i = 1, 50 do t[i] = ("x"):rep(200 + i) end kept[#kept + 1] = t end
local function drop () local t = {} for i = 1, 50 do t[i] = { i, i, i } end return #t end
local p = sprof.new { memory = true }
p:start()
local t0 = os.clock()
repeat keep() drop() drop() until os.clock() - t0 >= 0.3
p:stop()
p:write(arg[1] .. ".json", "json")
p:write(arg[1] .. ".pb.gz", "pprof")
p:write(arg[1] .. ".live.pb.gz", "pprof", { memory_view = "live" })
p:write(arg[1] .. ".time.pb.gz", "pprof", { memory_view = "time" })
]]

local sprof_lua = h.quote(h.sprof_lua)

local go_pprof, write_file = h.go_pprof, h.write

-- The profile of one run of MEMORY: its files' common prefix.
local run_prefix
local function memory_run ()
  if not run_prefix then
    run_prefix = h.tmpfile("")
    local r = h.run(h.lua .. " " .. h.quote(h.script(MEMORY)) .. " " .. h.quote(run_prefix))
    assert(r.status == 0, r.err)
  end
  return run_prefix
end

local function session ()
  return (assert(json.decode(h.read(memory_run() .. ".json"))))
end

-- Sums of the four memory numbers over the stacks of a decoded session,
-- of all of them or of those through a function named 'through'.
local function sums (s, through)
  local t = { alloc_bytes = 0, alloc_objects = 0, live_bytes = 0, live_objects = 0 }
  for _, stack in ipairs(s.stacks) do
    local found = through == nil
    for _, f in ipairs(stack.frames) do
      if s.frames[f + 1].name == through then found = true end
    end
    if found then
      for k in pairs(t) do t[k] = t[k] + (stack[k] or 0) end
    end
  end
  return t
end

-- The rows of `go tool pprof -top`: { flat = %, cum = %, name = }.
local function pprof_top (text)
  local rows = {}
  for line in text:gmatch("[^\n]+") do
    local flat, cum, name = line:match("^%s*%S+%s+([%d.]+)%%%s+[%d.]+%%%s+%S+%s+([%d.]+)%%%s+(.+)$")
    if flat then rows[name] = { flat = tonumber(flat), cum = tonumber(cum) } end
  end
  return rows
end

-- The sample values of `go tool pprof -raw`, summed per column.
local function raw_sums (text)
  local t, n = { 0, 0, 0, 0 }, 0
  for a, b, c, d in text:gmatch("\n%s*(%d+)%s+(%d+)%s+(%d+)%s+(%d+):") do
    t[1], t[2], t[3], t[4] = t[1] + a, t[2] + b, t[3] + c, t[4] + d
    n = n + 1
  end
  return t, n
end


describe("pprof of a memory profile", function ()
  it("has Go's four heap sample types, the period, and our totals", function ()
    local raw = go_pprof("-raw " .. h.quote(memory_run() .. ".pb.gz"))
    assert.are.equal(0, raw.status, raw.err)
    assert.matches("PeriodType: space bytes", raw.out, 1, true)
    assert.matches("Period: 524288\n", raw.out, 1, true)
    assert.matches("alloc_objects/count alloc_space/bytes[dflt] inuse_objects/count inuse_space/bytes",
                   raw.out, 1, true)
    local t, n = raw_sums(raw.out)
    assert.is_true(n >= 2, raw.out)
    local ours = sums(session())
    assert.are.same({ ours.alloc_objects, ours.alloc_bytes, ours.live_objects, ours.live_bytes }, t)
    assert.is_true(ours.alloc_bytes >= 8 * 1024 * 1024, "allocated " .. ours.alloc_bytes)
    -- each view asked for is the default type; time is the time profile
    raw = go_pprof("-raw " .. h.quote(memory_run() .. ".live.pb.gz"))
    assert.matches("inuse_objects/count inuse_space/bytes[dflt]", raw.out, 1, true)
    raw = go_pprof("-raw " .. h.quote(memory_run() .. ".time.pb.gz"))
    assert.matches("samples/count wall/nanoseconds[dflt]", raw.out, 1, true)
    assert.matches("PeriodType: wall nanoseconds", raw.out, 1, true)
  end)

  -- (5.1 has no collection that runs no finalizers: garbage counts as live)
  local not_51 = h.lua_version == "5.1" and pending or it
  not_51("-sample_index=alloc_space and inuse_space name who allocates and who keeps", function ()
    local pb = h.quote(memory_run() .. ".pb.gz")
    local s = session()
    local total = sums(s)
    local alloc = go_pprof("-sample_index=alloc_space -top " .. pb)
    assert.are.equal(0, alloc.status, alloc.err)
    assert.matches("Type: alloc_space", alloc.out, 1, true)
    local live = go_pprof("-sample_index=inuse_space -top " .. pb)
    assert.are.equal(0, live.status, live.err)
    assert.matches("Type: inuse_space", live.out, 1, true)
    local alloc_rows, live_rows = pprof_top(alloc.out), pprof_top(live.out)
    for _, name in ipairs { "keep", "drop" } do
      local mine = sums(s, name)
      local a = 100 * mine.alloc_bytes / total.alloc_bytes
      local l = 100 * mine.live_bytes / total.live_bytes
      assert.is_truthy(alloc_rows[name], alloc.out)
      assert.is_true(math.abs(alloc_rows[name].cum - a) <= 0.1,
                     ("%s allocated: pprof %.2f%%, ours %.2f%%"):format(name, alloc_rows[name].cum, a))
      local row = live_rows[name] or { cum = 0 }
      assert.is_true(math.abs(row.cum - l) <= 0.1,
                     ("%s live: pprof %.2f%%, ours %.2f%%"):format(name, row.cum, l))
    end
    -- what keep holds is live; what drop made is gone
    assert.is_true(live_rows.keep.cum >= 90, live.out)
    assert.is_true((live_rows.drop or { cum = 0 }).cum < 5, live.out)
    assert.is_true(alloc_rows.drop.cum >= 20, alloc.out)
  end)

  it("goes on to the time profile from a profile without memory", function ()
    local p = sprof.profile(function () local t0 = os.clock() repeat until os.clock() - t0 >= 0.02 end)
    local path = h.tmpfile(".pb.gz")
    p:write(path, "pprof")
    local raw = go_pprof("-raw " .. h.quote(path))
    assert.are.equal(0, raw.status, raw.err)
    assert.matches("samples/count wall/nanoseconds[dflt]", raw.out, 1, true)
    assert.is_nil(raw.out:find("alloc_space", 1, true))
  end)
end)


describe("the JSON session of a memory profile", function ()
  -- (5.1: no [table]/[string] leaves, so no stack of memory samples only)
  local not_51 = h.lua_version == "5.1" and pending or it
  not_51("has the rate, each stack's memory, and the heap on the timeline", function ()
    local s = session()
    assert.are.equal(524288, s.memory_rate)
    local memory_only = 0
    for _, stack in ipairs(s.stacks) do
      if stack.samples == 0 and stack.weight_ns == 0 then
        memory_only = memory_only + 1
        assert.is_true((stack.alloc_bytes or 0) > 0 or (stack.live_bytes or 0) > 0)
      end
    end
    assert.is_true(memory_only > 0, "no stack with only memory")
    local tl = s.timeline
    assert.is_true(#tl.t_ns > 10)
    assert.are.equal(#tl.t_ns, #tl.heap)
    for i, k in ipairs(tl.stack) do
      -- a moment is a time sample: its stack has samples
      assert.is_true(s.stacks[k + 1].samples > 0, "moment " .. i)
      assert.is_true(tl.heap[i] > 0)
    end
    -- the heap holds what keep kept by the end
    assert.is_true(tl.heap[#tl.heap] >= sums(s).live_bytes / 2)
  end)

  it("loads back to the same file, and two loads add up", function ()
    local path = memory_run() .. ".json"
    local text = h.read(path)
    local p = sprof.new()
    p:load(path)
    assert.are.equal(text, p:output("json"))
    local r = h.run(sprof_lua .. " --load " .. h.quote(path) .. " -r json -o -")
    assert.are.equal(0, r.status, r.err)
    assert.are.equal(text, r.out)
    p:load(path)
    local once, twice = session(), (assert(json.decode(p:output("json"))))
    assert.are.equal(once.memory_rate, twice.memory_rate)
    for i, stack in ipairs(once.stacks) do
      for _, k in ipairs { "alloc_bytes", "alloc_objects", "live_bytes", "live_objects" } do
        assert.are.equal(2 * (stack[k] or 0), twice.stacks[i][k] or 0, k)
      end
    end
  end)

  it("renders memory views and pprof after --load", function ()
    local path = h.quote(memory_run() .. ".json")
    local text = h.run(sprof_lua .. " --load " .. path .. " -r text -o -")
    assert.are.equal(0, text.status, text.err)
    assert.matches("MiB", text.out, 1, true)
    assert.matches("keep", text.out, 1, true)
    local pb = h.tmpfile(".pb.gz")
    local r = h.run(sprof_lua .. " --load " .. path .. " -r pprof -o " .. h.quote(pb))
    assert.are.equal(0, r.status, r.err)
    local raw = go_pprof("-raw " .. h.quote(pb))
    local first = go_pprof("-raw " .. h.quote(memory_run() .. ".pb.gz"))
    assert.are.same(raw_sums(first.out), raw_sums(raw.out))
    assert.matches("alloc_space/bytes[dflt]", raw.out, 1, true)
  end)

  it("refuses a damaged memory field in one line", function ()
    local good = h.read(memory_run() .. ".json")
    local cases = {
      { "a negative alloc_bytes", (good:gsub('"alloc_bytes":', '"alloc_bytes":-', 1)),
        'a stack\'s "alloc_bytes" is not a count' },
      { "live_objects beyond 2^63", (good:gsub('"live_objects":', '"live_objects":1e30', 1)),
        'a stack\'s "live_objects" is not a count' },
      { "a rate that is not a number", (good:gsub('"memory_rate":%d+', '"memory_rate":"512k"')),
        '"memory_rate" is not a number of bytes' },
      { "a heap shorter than the timeline", (good:gsub('"heap":%[%d+,', '"heap":[')),
        "the timeline's heap is not one size per sample" },
      { "a negative heap", (good:gsub('"heap":%[', '"heap":[-')),
        "the timeline has a bad heap size" },
    }
    local p = sprof.new()
    local before = p:output("json")
    for _, case in ipairs(cases) do
      local name, text, why = case[1], case[2], case[3]
      assert.are_not.equal(good, text, name)
      local path = h.tmpfile(".json")
      write_file(path, text)
      local r = h.run(sprof_lua .. " --load " .. h.quote(path) .. " -r text -o -")
      assert.are.equal(1, r.status, name)
      assert.are.equal("", r.out, name)
      assert.matches("^[^\n]*cannot load '[^\n]*': " .. why:gsub("%p", "%%%0") .. "[^\n]*\n$",
                     r.err, nil, false, name)
      local ok, err = pcall(p.load, p, path)
      assert.is_false(ok, name)
      assert.matches(why, err, 1, true)
      assert.are.equal(before, p:output("json"), name)
    end
  end)
end)
