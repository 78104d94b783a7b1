// Types @ziro-agent/checkpoint-postgres imports from @ziro-agent/agent, reduced to what it uses. The real
// package is not published on the npm registry; this stand-in exists so `npm ci` can install the adapter.
export type CheckpointId = string;

export interface AgentSnapshot {
  readonly version: 1 | 2;
  readonly __ziro_snapshot__: true;
  [key: string]: unknown;
}

export interface CheckpointMeta {
  id: CheckpointId;
  threadId: string;
  createdAt: Date;
  agentSnapshotVersion: number;
  sizeBytes: number;
}

export interface Checkpointer {
  put(threadId: string, snapshot: AgentSnapshot): Promise<CheckpointId>;
  get(threadId: string, checkpointId?: CheckpointId): Promise<AgentSnapshot | null>;
  list(threadId: string, opts?: { limit?: number }): Promise<CheckpointMeta[]>;
  delete(threadId: string, checkpointId?: CheckpointId): Promise<void>;
}
