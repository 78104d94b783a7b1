CREATE TABLE IF NOT EXISTS "agents"."Checkpoints_policy" (
    singleton                  BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    max_checkpoints_per_thread INTEGER NOT NULL CHECK (max_checkpoints_per_thread >= 0)
)
