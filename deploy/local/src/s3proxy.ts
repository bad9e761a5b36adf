import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyMavenDependencies, pomHash } from './maven';
import { repoRoot, type StackPaths } from './paths';

/** The bucket the local stack's archiver writes to, and the credentials S3Proxy checks (AWS signature v2 or v4). */
export const LOCAL_S3 = { bucket: 'sluice-archive', accessKeyId: 'local-identity', secretAccessKey: 'local-credential', region: 'us-east-1' } as const;

/** S3Proxy's jar with its dependencies, copied from Maven Central into the cache once per pom. */
export async function ensureS3ProxyJar(cacheDir: string): Promise<string> {
  const pom = join(repoRoot, 'deploy', 'local', 's3proxy', 'pom.xml');
  const dir = join(cacheDir, 's3proxy', pomHash(pom));
  await copyMavenDependencies({ pom, dir, marker: join(dir, '.complete'), what: 'S3Proxy', args: ['-DexcludeTransitive=true'] });
  const jar = readdirSync(dir).find((f) => /^s3proxy-.*-jar-with-dependencies\.jar$/.test(f));
  if (!jar) throw new Error(`no S3Proxy jar in ${dir}`);
  return join(dir, jar);
}

/**
 * The command line of an S3Proxy on `port` with its filesystem backend in `<dataDir>/<name>` (each
 * directory there is a bucket; `LOCAL_S3.bucket` exists from the start).
 */
export function s3ProxyArgs(paths: StackPaths, jar: string, name: string, port: number): string[] {
  const base = join(paths.dataDir, name);
  mkdirSync(join(base, LOCAL_S3.bucket), { recursive: true });
  const properties = join(paths.dataDir, `${name}.properties`);
  writeFileSync(
    properties,
    [
      `s3proxy.endpoint=http://127.0.0.1:${port}`,
      's3proxy.authorization=aws-v2-or-v4',
      `s3proxy.identity=${LOCAL_S3.accessKeyId}`,
      `s3proxy.credential=${LOCAL_S3.secretAccessKey}`,
      'jclouds.provider=filesystem',
      `jclouds.filesystem.basedir=${base}`,
      '',
    ].join('\n'),
  );
  return ['-Xms32m', '-Xmx192m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-jar', jar, '--properties', properties];
}

/** What a client of an S3Proxy needs: the AWS variables the SDK reads, and an ARCHIVE_URL. */
export function s3ClientEnv(port: number, prefix = ''): Record<string, string> {
  return {
    ARCHIVE_URL: `s3://${LOCAL_S3.bucket}/${prefix}`,
    AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
    AWS_ACCESS_KEY_ID: LOCAL_S3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_S3.secretAccessKey,
    AWS_REGION: LOCAL_S3.region,
  };
}
