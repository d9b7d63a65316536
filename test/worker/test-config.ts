// The WITNESS_CONFIG the workerd tests run with. Tests that need other settings pass
// their own config through `testEnv()` (see helpers.ts) instead of editing this one.
export const TEST_CONFIG = {
  plan: "paid",
  telegram: { chatId: "4242", baseUrl: "http://127.0.0.1:9" },
  alerts: { repeatMinutes: 30, timezone: "UTC", digestAt: null },
  hosts: [{ id: "alpha" }, { id: "beta", allowRemotePause: true }],
};
