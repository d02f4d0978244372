// Where the InfluxDB settings come from: the rig file's storage.influx, overridden by the environment
// (QSLAB_INFLUX_URL, QSLAB_INFLUX_ORG, QSLAB_INFLUX_BUCKET, QSLAB_INFLUX_TOKEN). The token is only ever read from the
// environment (storage.influx.tokenEnv names the variable, QSLAB_INFLUX_TOKEN by default).
import { join } from 'node:path';
import type { Rig } from '../config/rig.js';
import { ConfigError } from '../config/load.js';
import { ROOT } from '../paths.js';
import type { InfluxConfig } from './influx.js';

export { InfluxSink, openInfluxSink, pushSpool, listSpool, type InfluxConfig, type InfluxCounters, type PushResult } from './influx.js';

/** .qslab/spool under the checkout, or $QSLAB_SPOOL. */
export function defaultSpoolDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.QSLAB_SPOOL || join(ROOT, '.qslab', 'spool');
}

/**
 * The sink config for this rig and environment, or undefined when no InfluxDB is configured (the local store alone
 * is written then). Throws ConfigError for a malformed QSLAB_INFLUX_URL.
 */
export function influxConfigFrom(rig: Pick<Rig, 'storage'>, env: NodeJS.ProcessEnv = process.env, spoolDir?: string): InfluxConfig | undefined {
  const fromRig = rig.storage.influx;
  const url = env.QSLAB_INFLUX_URL || fromRig?.url;
  if (!url) return undefined;
  if (env.QSLAB_INFLUX_URL) {
    let ok = false;
    try {
      ok = ['http:', 'https:'].includes(new URL(env.QSLAB_INFLUX_URL).protocol);
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new ConfigError('environment', [
        `QSLAB_INFLUX_URL: ${JSON.stringify(env.QSLAB_INFLUX_URL)} is not an http(s) URL. Fix: e.g. QSLAB_INFLUX_URL=http://127.0.0.1:8086`,
      ]);
    }
  }
  const tokenEnv = fromRig?.tokenEnv ?? 'QSLAB_INFLUX_TOKEN';
  const cfg: InfluxConfig = {
    url,
    org: env.QSLAB_INFLUX_ORG ?? fromRig?.org ?? '',
    bucket: env.QSLAB_INFLUX_BUCKET || fromRig?.bucket || 'qslab',
    token: env[tokenEnv] ?? env.QSLAB_INFLUX_TOKEN ?? '',
    spoolDir: spoolDir ?? defaultSpoolDir(env),
  };
  // VictoriaMetrics stores string fields as always-0 metrics; QSLAB_INFLUX_STRING_FIELDS=0 leaves them out.
  if (env.QSLAB_INFLUX_STRING_FIELDS === '0' || env.QSLAB_INFLUX_STRING_FIELDS === 'false') cfg.stringFields = false;
  return cfg;
}
