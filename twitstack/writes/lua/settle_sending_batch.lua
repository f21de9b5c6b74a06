-- settle_sending for a batch of requests in one call (group commit, see group_commit.lua):
-- each entry is settle_sending's KEYS and ARGV, run as its own call would run it (its
-- transition and its ack together); the budget hash is read once and written once per batch.
--#include group_commit
--#include settle_sending_core
return group_commit_run(settle_sending, function(K, A)
  group_commit_cache(K[7])
end)
