-- lighttpd's mod_magnet runs this script for every request (see
-- lighttpd.conf). app.magnet is the app's ordinary magnet handler: it fills
-- lighty.r's response and returns the status. sprof.web runs it as is or,
-- for a request with ?profile when profiling is on (SPROF_WEB=1), under
-- the profiler. lighty is passed along: mod_magnet gives it to this
-- script only, not to the modules it requires.
return require("sprof.web").magnet(lighty, require("app").magnet)
