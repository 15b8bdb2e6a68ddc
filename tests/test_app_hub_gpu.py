"""AppTest of the sidebar's checkpoint-format default, Hub id box and GPU form: the dashboard plans what the
CLI plans for the same model, Hub id and GPU figures."""

from __future__ import annotations

import json

import pytest
from test_app_pages import app, metrics, no_exception, sel, text
from test_hub import TINY_CT, ct_checkpoint, lay_out, safetensors_bytes

from dashboard import fmt
from planner import api, cli, profiles

AWQ = "Meta-Llama-3.1-8B-Instruct-AWQ-INT4"
pytestmark = pytest.mark.skipif(AWQ not in profiles.model_names(), reason="the bundled AWQ checkpoint is missing")


def weights_row(at) -> str:
    table = at.dataframe[0].value
    return table.loc[table["metric"] == "weights per GPU", "value"].item()


def test_the_awq_checkpoint_is_planned_as_awq_on_the_cli_and_the_dashboard(capsys):
    assert cli.main(["inspect", AWQ, "--json"]) == 0
    cli_format = json.loads(capsys.readouterr().out)["weights_format"]
    at = app()
    at.selectbox(key="sb_model").set_value(AWQ).run()
    no_exception(at)
    s = sel(at)
    assert cli_format == s["weights"] == at.session_state["sb_weights"] == "awq-4bit-g128"
    p = api.plan(AWQ, s["gpu"], s["batch"], s["prompt"], s["output"], gpus=s["gpus"], tp=s["tp"],
                 kv_dtype=s["kv_dtype"], engine=s["engine"])  # the CLI's call: no --weights
    assert weights_row(at) == fmt.gib(p["weights_bytes_per_gpu"])
    assert metrics(at)["TPOT mean"] == fmt.ms(p["tpot_s"])


def test_changing_the_model_resets_the_weights_to_its_own_format():
    at = app()
    at.selectbox(key="sb_model").set_value(AWQ).run()
    at.selectbox(key="sb_weights").set_value("fp8").run()
    assert sel(at)["weights"] == "fp8"  # a choice for this model stays while the model stays
    at.number_input(key="sb_batch").set_value(4).run()
    assert sel(at)["weights"] == "fp8"
    at.selectbox(key="sb_model").set_value("Llama-3.1-8B").run()
    assert sel(at)["weights"] == "bf16"


def test_a_link_s_weights_win_over_the_checkpoint_default():
    at = app(model=AWQ, weights="fp8")
    no_exception(at)
    assert sel(at)["weights"] == "fp8"


def test_an_uploaded_quantized_config_gets_its_own_format():
    cfg = json.loads((profiles.ROOT / "models" / AWQ / "config.json").read_text())
    at = app()
    at.file_uploader(key="sb_upload").set_value(("config.json", json.dumps(cfg).encode(), "application/json"))
    at.run()
    no_exception(at)
    assert sel(at)["weights"] == "awq-4bit-g128"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    root = tmp_path / "hf"
    for k, v in {"HF_HOME": root, "HF_HUB_CACHE": root / "hub", "HF_ASSETS_CACHE": root / "assets"}.items():
        monkeypatch.setenv(k, str(v))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    profiles.load_model.cache_clear()
    yield root / "hub"
    profiles.load_model.cache_clear()


def test_a_hub_id_from_the_cache_is_planned_like_the_cli(hf_cache, capsys):
    lay_out(hf_cache, "acme/tiny-w4a16", TINY_CT, {"model.safetensors": safetensors_bytes(ct_checkpoint())})
    at = app()
    at.text_input(key="sb_hub").input("acme/tiny-w4a16").run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    s = sel(at)
    assert s["model"] == "acme/tiny-w4a16" and s["weights"] == "w4a16-g32"
    assert cli.main(["plan", "acme/tiny-w4a16", "--gpu", s["gpu"], "--batch", str(s["batch"]), "--prompt",
                     str(s["prompt"]), "--output", str(s["output"]), "--gpus", str(s["gpus"]), "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert weights_row(at) == fmt.gib(p["weights_bytes_per_gpu"]) == fmt.gib(68_192)  # the checkpoint's bytes
    assert metrics(at)["TPOT mean"] == fmt.ms(p["tpot_s"])
    assert at.query_params["hub"] in ("acme/tiny-w4a16", ["acme/tiny-w4a16"])


def test_a_hub_id_that_is_not_cached_offline_is_an_error_not_a_traceback(hf_cache):
    lay_out(hf_cache, "acme/tiny-w4a16", TINY_CT)
    at = app()
    at.text_input(key="sb_hub").input("acme/[x](https://evil.example)").run()
    at.text_input(key="sb_hub").input("acme/not-cached").run()
    no_exception(at)
    shown = text(" ".join(e.value for e in at.error))
    assert "'acme/not-cached' is not in the Hugging Face cache" in shown and "acme/tiny-w4a16" in shown
    assert sel(at)["model"] in profiles.model_names() and "TTFT mean" in metrics(at)  # the bundled model still plans


def test_a_bad_hub_link_parameter_warns():
    at = app(hub="[x](https://evil.example)")
    no_exception(at)
    assert any("hub=" in w.value for w in at.warning) and sel(at)["model"] in profiles.model_names()


def define_gpu(at, **figs):
    for k, v in figs.items():
        (at.text_input if k == "name" else at.number_input)(key=f"sb_ugpu_{k}").set_value(v)
    at.button(key="FormSubmitter:sb_ugpu_form-Use this GPU").click().run()
    no_exception(at)
    return at


def test_the_gpu_form_defines_a_gpu_planned_like_the_cli_flags(capsys):
    at = define_gpu(app(), name="my card", mem=48.0, bw=1.2, bf16=300.0, fp8=600.0, price=1.5)
    s = sel(at)
    assert s["gpu"].startswith("user-my-card-") and not at.error
    g = profiles.gpu(s["gpu"])
    assert g.user_defined and g.total_memory_bytes == 48 * 2**30 and g.price_usd_per_hour == 1.5
    assert cli.main(["plan", s["model"], "--gpu-memory-gib", "48", "--gpu-bandwidth-tbs", "1.2", "--gpu-bf16-tflops",
                     "300", "--gpu-fp8-tflops", "600", "--gpu-price", "1.5", "--batch", str(s["batch"]), "--prompt",
                     str(s["prompt"]), "--output", str(s["output"]), "--gpus", str(s["gpus"]), "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    shown = metrics(at)
    assert shown["TPOT mean"] == fmt.ms(p["tpot_s"]) and shown["$ / 1M output tokens"] == fmt.usd(p["cost_usd_per_1m_output_tokens"])
    assert weights_row(at) == fmt.gib(p["weights_bytes_per_gpu"])
    at.selectbox(key="sb_gpu").set_value("H100-SXM").run()
    assert any(o.startswith(s["gpu"]) for o in at.selectbox(key="sb_gpu").options)  # kept for the session


def test_a_gpu_name_with_markdown_is_plain_in_the_id():
    at = define_gpu(app(), name="[x](https://evil.example) **b**", mem=24.0, bw=1.0, bf16=100.0)
    gid = sel(at)["gpu"]
    assert gid.startswith("user-") and set(gid) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._+")
