-- Coroutine resumes and nothing else: what an interposed lua_resume costs
-- (README, "How it works"). Prints the CPU seconds of 2 million resumes.
--   build/spec/plain_host bench/resume.lua
--   LD_PRELOAD=build/libsprof.so SPROF_OUTPUT=/tmp/r.txt build/spec/plain_host bench/resume.lua
local co = coroutine.wrap(function () while true do coroutine.yield() end end)
local t0 = os.clock()
for _ = 1, 2e6 do co() end
io.stderr:write(string.format("%.3f\n", os.clock() - t0))
