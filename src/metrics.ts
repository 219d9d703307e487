/**
 * The init summary as a CloudWatch embedded-metric-format record (SNAPLOADER_METRICS=emf):
 * one JSON line in the function's log, from which CloudWatch makes metrics in the namespace
 * "snaploader", per function.
 */
export interface InitSummary {
  files: number;
  bytes: number;
  memfdBytes: number;
  tmpBytes: number;
  durationMs: number;
  gets: number;
  retries: number;
}

const METRICS: { key: keyof InitSummary; Name: string; Unit: string }[] = [
  { key: 'files', Name: 'Files', Unit: 'Count' },
  { key: 'bytes', Name: 'Bytes', Unit: 'Bytes' },
  { key: 'memfdBytes', Name: 'MemoryBytes', Unit: 'Bytes' },
  { key: 'tmpBytes', Name: 'TmpBytes', Unit: 'Bytes' },
  { key: 'durationMs', Name: 'InitDuration', Unit: 'Milliseconds' },
  { key: 'gets', Name: 'Requests', Unit: 'Count' },
  { key: 'retries', Name: 'Retries', Unit: 'Count' },
];

export function emfRecord(summary: InitSummary, functionName: string, now = Date.now()): object {
  const values: Record<string, number> = {};
  for (const m of METRICS) values[m.Name] = summary[m.key];
  return {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [{
        Namespace: 'snaploader',
        Dimensions: [['FunctionName']],
        Metrics: METRICS.map(({ Name, Unit }) => ({ Name, Unit })),
      }],
    },
    FunctionName: functionName,
    ...values,
  };
}
