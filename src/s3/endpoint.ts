/**
 * The S3 endpoint as the environment sets it, read the way the SDK reads it: AWS_ENDPOINT_URL_S3,
 * else AWS_ENDPOINT_URL, else S3's own (HTTPS).
 */
import { settingValue } from '../settings';

type Env = Record<string, string | undefined>;

/** The endpoint the environment names, or undefined for S3's own. */
export function s3EndpointFromEnv(env: Env): string | undefined {
  return settingValue(env, 'AWS_ENDPOINT_URL_S3') ?? settingValue(env, 'AWS_ENDPOINT_URL');
}

/** Whether the archive's GETs go over TLS: to S3's own endpoint, or to one not given as http://. */
export function s3UsesTls(env: Env): boolean {
  const endpoint = s3EndpointFromEnv(env);
  return endpoint === undefined || !/^http:\/\//i.test(endpoint);
}
