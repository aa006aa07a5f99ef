// `npm run build`: src/proxy.ts and roster's TypeScript client
// (clients/typescript) as one Node script, dist/proxy.mjs (esbuild), or
// the file named by the first argument (as tests/api/portal_proxy.rs does).
//
// The client's own imports of @connectrpc/connect and @bufbuild/protobuf
// are resolved here too (an alias resolves from this directory), so the
// bundle holds one copy of each, the one @connectrpc/connect-node uses.
import * as esbuild from "esbuild";

await esbuild.build({
  entryPoints: ["src/proxy.ts"],
  outfile: process.argv[2] ?? "dist/proxy.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  absWorkingDir: import.meta.dirname,
  alias: {
    "@connectrpc/connect": "@connectrpc/connect",
    "@bufbuild/protobuf": "@bufbuild/protobuf",
  },
  logLevel: "warning",
});
