-- Call-heavy: naive Fibonacci, millions of short Lua calls.
-- pair: 31  (bench/paired.lua: the argument for a run of about 0.15 s)
local function fib (n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local n = tonumber(arg[1]) or 35
print(fib(n))
