// "Local (MLX)" on a machine MLX cannot run on: shown disabled with the core's reason,
// and nothing that would download or start the sidecar is ever called.
import { render, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, test } from "vitest";
import App from "../src/App";
import { FakeBackend, model } from "./fakeBackend";

const REASON =
  "MLX needs an Apple Silicon Mac (M1 or later) and this machine runs Windows on x86_64: choose another " +
  "post-processing provider here, or use local-mlx on an Apple Silicon Mac (Linux on x86_64 or aarch64 also works, on the CPU)";

describe("platform", () => {
  test("on an unsupported machine Local (MLX) is disabled with the reason, and nothing is warmed or offered", async () => {
    // A downloaded selected model would be pre-warmed on a supported machine.
    const backend = new FakeBackend([model("org/selected", "downloaded"), model("org/other", "not_downloaded")]);
    backend.providers = [{ id: "local-mlx", label: "Local (MLX)", disabled_reason: REASON, note: null }];
    backend.install();
    render(<App />);

    const reason = await screen.findByRole("alert");
    expect(reason).toHaveTextContent(`Local (MLX) is not available on this computer. ${REASON}.`);
    const provider = screen.getByLabelText("Provider");
    expect(provider).toBeDisabled();
    expect(provider).toHaveAccessibleDescription(expect.stringContaining("MLX needs an Apple Silicon Mac"));
    expect(within(provider).getByRole("option", { name: "Local (MLX)" })).toBeDisabled();

    // The list was fetched (listing works everywhere), but no model settings are shown.
    await waitFor(() => expect(backend.called("mlx_list_models").length).toBeGreaterThan(0));
    expect(screen.queryByRole("list", { name: "Models" })).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Download" })).not.toBeInTheDocument();
    expect(screen.queryByText("Try it")).not.toBeInTheDocument();
    for (const command of ["mlx_warm_up", "mlx_download_model", "mlx_process_text_detailed"]) {
      expect(backend.called(command)).toEqual([]);
    }
  });

  test("where MLX runs on the CPU only the provider is usable and says what to expect", async () => {
    const backend = new FakeBackend([model("org/selected", "downloaded")]);
    const note = "On Linux MLX runs on the CPU only (mlx[cpu]), without a GPU: enhancing is slower than on an Apple Silicon Mac";
    backend.providers = [{ id: "local-mlx", label: "Local (MLX)", disabled_reason: null, note }];
    backend.install();
    render(<App />);

    await screen.findByRole("list", { name: "Models" });
    const provider = screen.getByLabelText("Provider");
    expect(provider).toBeEnabled();
    expect(provider).toHaveAccessibleDescription(`${note}.`);
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
    await waitFor(() => expect(backend.called("mlx_warm_up")).toHaveLength(1));
  });
});
