// The agent's version as sent in every ping. The build script injects the package
// version; running from source (tests) reports a dev version.
declare const __WITNESS_AGENT_VERSION__: string | undefined;

export const AGENT_VERSION: string =
  typeof __WITNESS_AGENT_VERSION__ === "string" ? __WITNESS_AGENT_VERSION__ : "0.0.0-dev";
