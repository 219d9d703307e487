/**
 * Credentials straight from the environment Lambda sets, so that the SDK's default credential
 * chain (profiles, SSO, processes, IMDS...) is never loaded there: build.mjs keeps it out of
 * the code parsed at start.
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3';

type StaticCredentials = Exclude<NonNullable<S3ClientConfig['credentials']>, (...args: never[]) => unknown>;

/**
 * What the SDK's default credential chain would find first: the credentials in the environment,
 * read as its fromEnv reads them. Undefined (so the SDK runs its default chain) without both
 * keys, or with AWS_PROFILE, which the chain puts before them.
 */
export function envCredentials(env: NodeJS.ProcessEnv): StaticCredentials | undefined {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey || env.AWS_PROFILE) return undefined;
  const sessionToken = env.AWS_SESSION_TOKEN;
  const expiry = env.AWS_CREDENTIAL_EXPIRATION;
  const credentialScope = env.AWS_CREDENTIAL_SCOPE;
  const accountId = env.AWS_ACCOUNT_ID;
  return {
    accessKeyId,
    secretAccessKey,
    ...(sessionToken && { sessionToken }),
    ...(expiry && { expiration: new Date(expiry) }),
    ...(credentialScope && { credentialScope }),
    ...(accountId && { accountId }),
    // The user agent then reports them as environment credentials, as the chain's would be.
    $source: { CREDENTIALS_ENV_VARS: 'g' },
  } as StaticCredentials;
}
