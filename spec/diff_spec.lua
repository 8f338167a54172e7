-- sprof-lua --diff: two saved sessions compared, per function and per
-- call path, sorted by the change.
local h = require "spec.helper"

-- Three functions that spin in their own bodies, so that each one's time
-- is its own; slow does SLOW_FACTOR times the work of the first run.
-- ROUNDS is the same in both runs: the runs differ only in slow.
local WORKLOAD = [[
local factor = tonumber(os.getenv("SLOW_FACTOR")) or 1
local rounds = tonumber(os.getenv("ROUNDS"))
local function slow () local x = 0 for i = 1, 500000 * factor do x = x + i % 7 end return x end
local function steady () local x = 0 for i = 1, 500000 do x = x + i % 7 end return x end
local function other () local x = 0 for i = 1, 250000 do x = x + i % 7 end return x end
if rounds == nil then  -- calibration: rounds in 0.3 s of CPU time
  local n, stop = 0, os.clock() + 0.3
  repeat slow() steady() other() n = n + 1 until os.clock() >= stop
  print(n)
  return
end
for _ = 1, rounds do slow() steady() other() end
]]

local script = h.script(WORKLOAD)

-- The rounds that take about 'secs' of CPU time on this machine.
local function rounds_for (secs)
  local r = h.run("lua5.4 " .. h.quote(script))
  local per = assert(tonumber(r.out), r.err)
  return math.max(1, math.floor(per * secs / 0.3))
end

-- Profiles the workload into a JSON session; CPU clock: the machine's
-- other jobs do not count.
local function profile (rounds, factor, opts)
  local json = h.tmpfile(".json")
  local r = h.sprof("--clock cpu " .. (opts or "") .. " -o " .. h.quote(json),
                    script, "", { ROUNDS = tostring(rounds),
                                  SLOW_FACTOR = tostring(factor) })
  assert.are.equal(0, r.status, r.err)
  return json
end

-- The same workload profiled in one process by two profilers that take
-- turns, a tenth of a second each: the first with slow as it was, the
-- second with slow doing twice the work. Whatever else the machine does
-- then weighs on both alike, so their seconds compare.
local TAKING_TURNS = [[
local sprof = require "sprof"
local script, rounds, turns, out_before, out_after = ...
local runs = { { p = sprof.new { clock = "cpu" }, factor = "1", out = out_before },
               { p = sprof.new { clock = "cpu" }, factor = "2", out = out_after } }
local env = os.getenv
for _, run in ipairs(runs) do run.p:set_program(script) end
for _ = 1, tonumber(turns) do
  for _, run in ipairs(runs) do
    os.getenv = function (k)  -- the workload reads its factor from here
      if k == "ROUNDS" then return rounds end
      if k == "SLOW_FACTOR" then return run.factor end
      return env(k)
    end
    local chunk = assert(loadfile(script))
    run.p:start()
    chunk()
    run.p:stop()
  end
end
for _, run in ipairs(runs) do run.p:write(run.out, "json") end
]]

local function taking_turns (secs)
  local per_turn = rounds_for(0.1)
  local turns = math.max(1, math.floor(secs / 0.1 + 0.5))
  local before, after = h.tmpfile(".json"), h.tmpfile(".json")
  local r = h.run("lua5.4 " .. h.quote(h.script(TAKING_TURNS)) .. " "
                  .. table.concat({ h.quote(script), per_turn, turns,
                                    h.quote(before), h.quote(after) }, " "))
  assert.are.equal(0, r.status, r.err)
  return before, after
end

local function diff (before, after, opts)
  return h.run(h.quote(h.sprof_lua) .. " --diff " .. h.quote(before) .. " "
               .. h.quote(after) .. " " .. (opts or ""))
end

-- The rows of the functions table, in order: { before, after, change,
-- relative, self_change, name, where } (numbers in % or s; relative in %,
-- math.huge for "new").
local function function_rows (text)
  local rows, inside = {}, false
  for line in (text .. "\n"):gmatch("(.-)\n") do
    if line:match("^%s+before%s+after%s+change%s+relative") then inside = true
    elseif inside and line == "" then break
    elseif inside then
      local b, a, c, rel, sc, fn = line:match(
        "^%s+([%d.]+)%%?%s+([%d.]+)%%?%s+([-+]?[%d.]+) %a+%s+(%S+)%s+([-+]?[%d.]+) %a+%s+(.*)$")
      assert(b, "not a row of the functions table: " .. line)
      local name, where = fn:match("^(.-)  (%S+)$")  -- markers have no where
      rows[#rows + 1] = { before = tonumber(b), after = tonumber(a),
                          change = tonumber(c), self_change = tonumber(sc),
                          relative = rel == "new" and math.huge
                                     or tonumber((rel:gsub("%%$", ""))),
                          name = name or fn, where = where }
    end
  end
  return rows
end

local function row_of (rows, name)
  for i, r in ipairs(rows) do if r.name == name then return r, i end end
end

describe("sprof-lua --diff", function ()
  local before, after
  setup(function ()
    local rounds = rounds_for(1.5)
    before = profile(rounds, 1)
    after = profile(rounds, 2)
  end)

  it("ranks the function that got slower first, by share of each run", function ()
    local r = diff(before, after)
    assert.are.equal(0, r.status, r.err)
    assert.are.equal("", r.out)  -- to stderr, as the other reports
    assert.matches("Before: " .. before:gsub("%p", "%%%0"), r.err)
    assert.matches("After:  " .. after:gsub("%p", "%%%0"), r.err)
    assert.matches("Compared: shares of each run's time", r.err)
    local rows = function_rows(r.err)
    local slow, rank = row_of(rows, "slow")
    assert.are.equal(1, rank, r.err)
    -- 40% of the first run; 8 parts of 14 (57%) of the second
    assert.is_true(slow.before > 30 and slow.before < 50, r.err)
    assert.is_true(slow.after > 48 and slow.after < 66, r.err)
    assert.are.near(slow.after - slow.before, slow.change, 0.11)
    -- relative: of the shares shown, not of the seconds
    assert.are.near(100 * (slow.after / slow.before - 1), slow.relative, 1.5)
    -- the others keep their time, so their shares shrink
    assert.is_true(row_of(rows, "steady").change < 0, r.err)
    assert.is_true(row_of(rows, "other").change < 0, r.err)
    -- and the tree has them, under the main chunk, with the change
    assert.matches("\n[^\n]-─ [%d.]+%s+[%d.]+%%%s+%+[%d.]+ pt%s+%+%d+%%  slow  ", r.err)
  end)

  it("with --diff-absolute: the slower function took about twice as long", function ()
    local turns_before, turns_after = taking_turns(1.5)
    local r = diff(turns_before, turns_after, "--diff-absolute")
    assert.are.equal(0, r.status, r.err)
    assert.matches("Compared: time, in seconds", r.err)
    local rows = function_rows(r.err)
    local slow, rank = row_of(rows, "slow")
    -- the main chunk holds the whole run: it grew by as much
    for i = 1, rank - 1 do assert.are.equal("(main chunk)", rows[i].name, r.err) end
    assert.is_true(slow.relative >= 60 and slow.relative <= 150, r.err)
    assert.is_true(math.abs(row_of(rows, "steady").relative) <= 25, r.err)
    assert.are.near(slow.after - slow.before, slow.change, 0.0011)
  end)

  it("writes the html report with both sessions, and text to -o", function ()
    local page = h.tmpfile(".html")
    local r = diff(before, after, "-o " .. h.quote(page))
    assert.are.equal(0, r.status, r.err)
    assert.are.equal("", r.err)
    local html = h.read(page)
    assert.matches('"format":"sprof%-diff"', html)
    assert.matches('"mode":"share"', html)
    assert.matches('"before":{"format":"sprof%-session"', html)
    assert.matches('"after":{"format":"sprof%-session"', html)
    local text = h.tmpfile(".txt")
    r = diff(before, after, "--diff-absolute -o " .. h.quote(text))
    assert.are.equal(0, r.status, r.err)
    assert.matches("sprof %-%-diff", h.read(text))
    page = h.tmpfile(".html")
    r = diff(before, after, "--diff-absolute -r html -o " .. h.quote(page))
    assert.matches('"mode":"absolute"', h.read(page))
  end)

  it("compares two memory profiles by bytes, or their time", function ()
    local alloc = h.script [[
local keep = {}
local function grow (n) for i = 1, n do keep[#keep + 1] = ("x"):rep(100 + i % 50) end end
local stop = os.clock() + 0.2
repeat grow(1000) until os.clock() >= stop
]]
    local m1, m2 = h.tmpfile(".json"), h.tmpfile(".json")
    assert.are.equal(0, h.sprof("--memory -o " .. h.quote(m1), alloc).status)
    assert.are.equal(0, h.sprof("--memory -o " .. h.quote(m2), alloc).status)
    local r = diff(m1, m2)
    assert.are.equal(0, r.status, r.err)
    assert.matches("Compared: shares of each run's bytes allocated", r.err)
    assert.is_truthy(row_of(function_rows(r.err), "grow"))
    r = diff(m1, m2, "--diff-absolute --memory-view live")
    assert.are.equal(0, r.status, r.err)
    assert.matches("Compared: live bytes, in bytes", r.err)
    -- a memory profile against a time profile: their time
    r = diff(before, m2, "--memory-view time")
    assert.are.equal(0, r.status, r.err)
    assert.matches("Compared: shares of each run's time", r.err)
  end)

  it("reads the sessions that --load-prev keeps", function ()
    local state = h.tmpdir .. "/diff-state"
    local env = { XDG_STATE_HOME = state, ROUNDS = "1", SLOW_FACTOR = "1" }
    assert.are.equal(0, h.sprof("-o /dev/null", script, "", env).status)
    local kept = h.run("ls " .. h.quote(state .. "/sprof") .. "/session-*.json").out:match("[^\n]+")
    local r = diff(kept, after)
    assert.are.equal(0, r.status, r.err)
    assert.matches("Functions by the change", r.err)
  end)

  describe("refuses in one line", function ()
    local function refused (opts, status, message)
      local r = h.run(h.quote(h.sprof_lua) .. " " .. opts)
      assert.are.equal(status, r.status, r.err)
      assert.matches(message, r.err)
      -- usage errors add "Try '... --help'.", as the command's others do
      assert.are.equal(status == 2 and 2 or 1, select(2, r.err:gsub("\n", "")), r.err)
      assert.are.equal("", r.out)
    end

    it("a file that is missing or not a session", function ()
      refused("--diff " .. h.quote(h.tmpdir .. "/none.json") .. " " .. h.quote(after), 1,
              "cannot load '.-none%.json': No such file or directory")
      local other = h.tmpfile(".json")
      h.write(other, '{"name": "not a profile"}')
      refused("--diff " .. h.quote(before) .. " " .. h.quote(other), 1,
              "cannot load '.-': not a sprof session")
      refused("--diff " .. h.quote(before) .. " " .. h.quote(script), 1,
              "cannot load '.-': not valid JSON")
    end)

    it("a time profile against a memory profile", function ()
      local m = h.tmpfile(".json")
      assert.are.equal(0, h.sprof("--memory -o " .. h.quote(m), script, "",
                                  { ROUNDS = "1" }).status)
      refused("--diff " .. h.quote(before) .. " " .. h.quote(m), 1,
              "'.-' is a memory profile and '.-' is not: compare their time "
              .. "with %-%-memory%-view time")
      refused("--diff " .. h.quote(m) .. " " .. h.quote(before) .. " --memory-view live", 1,
              "'.-' is not a memory profile: compare time %(%-%-memory%-view time%)")
    end)

    it("--diff with one file, a script, --load, or a format it does not write", function ()
      refused("--diff " .. h.quote(before), 2,
              "%-%-diff compares two saved sessions: %-%-diff before%.json after%.json")
      refused("--diff " .. h.quote(before) .. " -r html", 2,
              "%-%-diff compares two saved sessions: %-%-diff before%.json after%.json")
      refused("--diff " .. h.quote(before) .. " " .. h.quote(after) .. " " .. h.quote(script), 2,
              "%-%-diff compares two saved sessions: give it no script and no lua options")
      refused("--diff " .. h.quote(before) .. " " .. h.quote(after) .. " -e 'x = 1'", 2,
              "%-%-diff compares two saved sessions: give it no script and no lua options")
      refused("--load " .. h.quote(before) .. " --diff " .. h.quote(before) .. " " .. h.quote(after), 2,
              "%-%-diff compares the two sessions it names: give it no %-%-load or %-%-load%-prev")
      refused("--diff " .. h.quote(before) .. " " .. h.quote(after) .. " -r json", 2,
              "%-%-diff writes text or html, not json")
      refused("--diff " .. h.quote(before) .. " " .. h.quote(after) .. " -o x.pb.gz", 2,
              "%-%-diff writes text or html, not pprof")
      refused("--diff-absolute " .. h.quote(script), 2,
              "%-%-diff%-absolute goes with %-%-diff before%.json after%.json")
    end)
  end)
end)
