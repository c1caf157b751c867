import { createRequire } from 'node:module';
import uws from 'uWebSockets.js';
import { ErrorCodes, QilinError } from '../../kernel/errors.js';

/**
 * Which uWebSockets.js implementation this process loaded.
 *
 * The package (`@trufflesuite/uws-js-unofficial`, aliased as `uWebSockets.js`)
 * loads `binaries/uws_<platform>_<arch>_<abi>.node` and, when that fails or
 * `UWS_USE_FALLBACK` is set, *silently* returns a JS shim built on `ws`
 * (`dist/index.js`) that is an order of magnitude slower and lacks features.
 * The shim exports only `App`, `_cfg`, `us_listen_socket_close`,
 * `us_socket_local_port` and `default`; the native addon also exports
 * `SSLApp` and `getParts` (among others), which is how we tell them apart.
 */
export interface NativeUwsInfo {
  /** True when the native addon is in use. */
  native: boolean;
  /** The binary the loader looks for, e.g. `uws_linux_x64_115.node`. */
  binary: string;
  platform: NodeJS.Platform;
  arch: string;
  /** Node's module ABI (`process.versions.modules`). */
  abi: string;
  /** Installed package version, when readable. */
  version: string | undefined;
  /** True when `UWS_USE_FALLBACK` forces the shim. */
  fallbackForced: boolean;
}

// Same parsing as the package's src/uws.js.
const FORCING_VALUES = new Set(['true', 'True', 'TRUE', '1']);

function packageVersion(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const pkg = require('uWebSockets.js/package.json') as { name?: unknown; version?: unknown };
    return typeof pkg.version === 'string' ? `${String(pkg.name)}@${pkg.version}` : undefined;
  } catch {
    return undefined;
  }
}

/** Facts about the loaded uWebSockets.js, for the start-up log line. */
export function nativeUwsInfo(): NativeUwsInfo {
  const loaded = uws as unknown as Record<string, unknown>;
  const env = process.env['UWS_USE_FALLBACK'];
  const fallbackForced = env !== undefined && FORCING_VALUES.has(env);
  const native = typeof loaded['SSLApp'] === 'function' && typeof loaded['getParts'] === 'function';
  const abi = process.versions.modules;
  return {
    native: native && !fallbackForced,
    binary: `uws_${process.platform}_${process.arch}_${abi}.node`,
    platform: process.platform,
    arch: process.arch,
    abi,
    version: packageVersion(),
    fallbackForced,
  };
}

/**
 * Throw QLN_UWS_NATIVE_MISSING unless the native uWebSockets.js addon is in
 * use. The server calls this at start: running on the shim would pass every
 * functional test and then miss every latency target.
 */
export function assertNativeUws(): void {
  const info = nativeUwsInfo();
  if (info.native) return;
  const why = info.fallbackForced
    ? `UWS_USE_FALLBACK=${process.env['UWS_USE_FALLBACK'] ?? ''} forces the JS fallback; unset it`
    : `the native binding did not load (the package's loader printed the reason on stderr)`;
  throw new QilinError(
    ErrorCodes.UWS_NATIVE_MISSING,
    `uWebSockets.js is running its slow JS fallback, not the native binary ${info.binary} ` +
      `(platform ${info.platform}, arch ${info.arch}, ABI ${info.abi}, ${info.version ?? 'version unknown'}): ${why}`,
    { details: { ...info } },
  );
}
