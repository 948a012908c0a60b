// shared page helpers
