-- Give back a reservation whose request got no rate-limit headers. KEYS: 1 in-flight counter
--#include budget_core
clean_counter(KEYS[1])
if redis.call('DECR', KEYS[1]) < 0 then redis.call('SET', KEYS[1], 0) end
return 1
