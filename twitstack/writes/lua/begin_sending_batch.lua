-- begin_sending for a batch of requests in one call (group commit, see group_commit.lua):
-- each entry is begin_sending's KEYS and ARGV, run as its own call would run it; the budget
-- hash and the spend rollups are read once and written once per batch.
--#include group_commit
--#include begin_sending_core
return group_commit_run(begin_sending, function(K, A)
  group_commit_cache(K[7])
  group_commit_cache(K[10])
  group_commit_cache(K[11])
end)
