"""Page 7: learn. The seed's ideas with live numbers from the current selection: prefill against decode,
the KV cache, MHA/MQA/GQA, quantization methods, distillation as a teacher/student plan comparison,
what serving well means (cost, throughput, latency), how decoding stops (EOS and the max_tokens cap),
and quantization-aware training against post-training quantization."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import core, figures, fmt, i18n, page, tables
from dashboard.i18n import t
from dashboard.state import Selection, format_ids, model_names
from planner import api
from planner.memory import Deployment
from planner.traffic import stopping_example

TPS = (1, 2, 4, 8, 16)
STOP_EXAMPLE_MAX = (4096, 1024)  # the stopping example's longest mean prompt and output: a simulation of a second


def generation(sel: Selection, p: dict, r: dict) -> None:
    st.header(t("1. Prefill and decode"))
    st.markdown(t("A model writes one token at a time, feeding its own output back in, until it emits an end token "
                "or reaches the length limit. The prompt is read in one parallel pass, the **prefill**; every later "
                "token takes one **decode** step."))
    pi = p["prefill_flops"] / p["prefill_bytes"]
    di = p["decode_step_flops"] / p["decode_step_bytes"]
    ridge = r["peak_flops"] / r["bandwidth_bytes_per_s"]
    c = st.columns(4)
    c[0].metric(t("Prefill (TTFT)"), fmt.ms(p["ttft_lower_bound_s"]),
                help=t("{n:,} prompt tokens in one pass, nothing else queued").format(n=sel.prompt))
    c[1].metric(t("Prefill intensity"), f"{pi:,.0f} FLOP/B", help=t("{bound}-bound").format(bound=t(p["bound"]["prefill"])))
    c[2].metric(t("Decode step (TPOT)"), fmt.ms(p["tpot_mean_value_s"]),
                help=t("batch {batch}, one token each").format(batch=sel.batch))
    c[3].metric(t("Decode intensity"), f"{di:,.1f} FLOP/B", help=t("{bound}-bound").format(bound=t(p["bound"]["decode"])))
    pts = pd.DataFrame({"name": [t("prefill"), t("decode")], "intensity": [pi, di]})
    st.plotly_chart(figures.roofline(r["peak_flops"], r["bandwidth_bytes_per_s"], pts))
    st.markdown(t("On {gpu} the ridge point is **{ridge:,.0f} FLOP per byte**: below it a step waits on memory, above "
                  "it on arithmetic. This plan's prefill does {pi:,.0f} FLOP per byte, so it is **{pb}-bound**; a "
                  "decode step reads all the weights and every sequence's KV cache to produce just {batch} token(s), "
                  "{di:,.1f} FLOP per byte: **{db}-bound**. That is why batching helps decode so much: the weights "
                  "are read once for the whole batch.").format(gpu=sel.gpu, ridge=ridge, pi=pi, di=di, batch=sel.batch,
                                                              pb=t(p["bound"]["prefill"]), db=t(p["bound"]["decode"])))


def kv_cache(sel: Selection, p: dict, ins: dict) -> None:
    st.header(t("2. The KV cache"))
    ctx = sel.prompt + sel.output
    st.markdown(t("Keys and values already computed for earlier tokens are kept, so a decode step computes them only "
                  "for the new token. The price is memory, growing with every token of every sequence:"))
    seed = core.seed_kv(sel.model, sel.text, sel.kv, sel.batch, ctx)  # bytes per element from the KV dtype table
    st.code(f"2 x layers x kv_heads x head_dim x seq_len x batch x bytes\n"
            f"= 2 x {seed['layers']} x {seed['kv_heads']} x {seed['head_dim']} x {ctx:,} x {sel.batch} x "
            f"{seed['bytes_per_element']:g} = {fmt.gib(seed['bytes'])}", language="text")
    share = p["kv_cache_bytes_per_gpu"] / p["memory_total_bytes_per_gpu"]
    st.markdown(t("In this plan the KV cache is **{kv}** per GPU, {share:.0%} of the memory used; the weights are "
                  "{weights}. The largest batch that fits at {ctx:,} tokens is **{batch:,}**.").format(
                      kv=fmt.gib(p["kv_cache_bytes_per_gpu"]), share=share, weights=fmt.gib(p["weights_bytes_per_gpu"]),
                      ctx=ctx, batch=p["max_batch"]))


def attention(sel: Selection, ins: dict) -> None:
    st.header(t("3. MHA, MQA and GQA"))
    heads, kvh = ins["num_heads"], ins["num_kv_heads"]
    if ins["attention"] == "MLA":
        st.markdown(t("{model} uses multi-head latent attention: it caches one compressed latent per token ({gib} per "
                      "million tokens) instead of per-head K and V.").format(
                          model=fmt.plain(sel.model), gib=fmt.gib(ins["kv_bytes_per_token"] * 2**20)))
        return
    rows = []
    for kind, label in ((str(heads), "MHA"), (str(kvh), f"this model ({ins['attention']})"), ("1", "MQA")):
        try:
            r = core.attention_row(sel.model, sel.text, kind, *sel.dep, sel.batch, sel.prompt, sel.output)
        except Exception:  # noqa: BLE001, S112
            continue
        rows.append({"attention": i18n.label(label), "kv_heads": int(kind), "KiB_per_token": r["kv_bytes_per_token"] / 1024,
                     "largest_batch": r["max_batch"], "tpot_ms": r["tpot_s"] * 1e3})
    df = pd.DataFrame(rows).drop_duplicates("kv_heads")
    st.markdown(t("Multi-head attention keeps K and V for every one of the {heads} heads: the most memory, and the most "
                  "bytes read per decode step. **MQA** shares one K/V head among all query heads; **GQA** one per "
                  "group. {model} has {kvh} KV head(s) for {heads} query heads (groups of {group}).").format(
                      heads=heads, kvh=kvh, model=fmt.plain(sel.model), group=heads // kvh))
    tables.show(df.round(2), "learn_attention", "lattn")
    st.caption(t("MQA loses quality and needs uptraining (even 10% of the original data left a gap); GQA stays close "
               "to MHA, and about 5% of the original data closes the gap (the seed; Ainslie et al. 2023)."))


QUANT = (
    ("bitsandbytes LLM.int8()", "bnb-int8", "8-bit matmul; outlier input columns stay in 16 bit, the rest scaled "
     "vector-wise by absmax. `BitsAndBytesConfig(load_in_8bit=True)`"),
    ("bitsandbytes NF4", "bnb-nf4", "4-bit normal-float codes, dequantized per matmul. "
     "`BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=\"nf4\")`"),
    ("GPTQ", "gptq-4bit-g128", "quantize each layer so its output on a calibration set matches; slow to produce "
     "(4 GPU-hours on an A100 for 175B). `GPTQConfig(bits=4, dataset=\"c4\")`"),
    ("AWQ", "awq-4bit-g128", "activation-aware: scale up the ~1% salient weights before rounding; fast to produce, "
     "keeps quality"),
    ("GGUF", "Q4_K_M", "llama.cpp's one-file format for CPU, GPU and Apple silicon; layers can be split between "
     "GPU and CPU (partial offload)"),
)


def format_rows(sel: Selection, spec: tuple, names: tuple[str, str, str]) -> tuple[dict | None, pd.DataFrame]:
    """The model's weight bytes in each format of ``spec`` ((label, format id, note) rows) beside bf16,
    from the core's format table; ``names``: the label, format and note columns. Returns the bf16 row too."""
    base = core.format_row(sel.model, sel.text, "bf16") if "bf16" in format_ids() else None
    rows = []
    for name, fid, note in spec:
        if fid not in format_ids():
            continue
        r = core.format_row(sel.model, sel.text, fid)
        rows.append({names[0]: name, names[1]: fid, "bits_per_weight": r["bits_per_weight"],
                     "weights_gib": r["weight_bytes"] / 2**30,
                     "vs_bf16": r["weight_bytes"] / base["weight_bytes"] if base else float("nan"), names[2]: t(note)})
    return base, pd.DataFrame(rows).round(3)


def quantization(sel: Selection) -> None:
    st.header(t("4. Quantization"))
    st.markdown(t("FP32 to FP16/BF16, then 8, 4 or 3 bits. The common choice today is **W4A16**: 4-bit weights, "
                  "16-bit arithmetic. Post-training quantization (PTQ) is the norm for LLMs."))
    base, rows = format_rows(sel, QUANT, ("method", "format", "how"))
    tables.show(rows, "learn_quantization", "lquant")
    if base:
        st.caption(t("{model} in bf16: {gib}. Bits per weight include scales, zero points and the tensors each method "
                     "leaves in 16 bit. See the Quantization page for speed and fit.").format(
                         model=fmt.plain(sel.model), gib=fmt.gib(base["weight_bytes"])))


def _smallest_tp_plan(model: str, gpu: str, sel: Selection) -> dict | None:
    for tp in TPS:
        try:
            p = core.plan(model, "", gpu, tp, "bf16" if "bf16" in format_ids() else sel.weights, sel.kv_dtype,
                          sel.engine, sel.batch, sel.prompt, sel.output, simulate=False)
        except Exception:  # noqa: BLE001, S112 - TP that does not divide the heads: try the next
            continue
        if p["fits"]:
            return p
    return None


def distillation(sel: Selection) -> None:
    st.header(t("5. Distillation: teacher and student"))
    st.markdown(t("A large **teacher** model's outputs train a small **student**. Small LLMs are now commonly built "
                "from data the large ones generate (Zephyr used LLMs to build both its instruction and its "
                "preference data). What the student saves at serving time, on the same GPU:"))
    names = list(model_names())
    sizes = {n: core.inspect(n, "", "bf16", "bf16", "paged", 1024, 1)["params_total"] for n in names}
    dense = sorted(names, key=lambda n: sizes[n])
    teacher_default = next((n for n in ("Llama-3.1-70B", "Meta-Llama-3.1-70B") if n in names), dense[-1])
    student_default = next((n for n in ("Llama-3.1-8B", "Meta-Llama-3.1-8B") if n in names), dense[0])
    c1, c2 = st.columns(2)
    teacher = c1.selectbox(t("Teacher"), names, index=names.index(teacher_default), key="l_teacher")
    student = c2.selectbox(t("Student"), names, index=names.index(student_default), key="l_student")
    rows = []
    for role, m in (("teacher", teacher), ("student", student)):
        p = _smallest_tp_plan(m, sel.gpu, sel)
        if p is None:
            rows.append({"role": role, "model": m, "params_b": sizes[m] / 1e9, "note": f"does not fit on up to 16 x {sel.gpu}"})
            continue
        rows.append({"role": role, "model": m, "params_b": sizes[m] / 1e9, "gpus": p["gpus_per_replica"],
                     "weights_gib_per_gpu": p["weights_bytes_per_gpu"] / 2**30, "ttft_one_prompt_ms": p["ttft_lower_bound_s"] * 1e3,
                     "tpot_ms": p["tpot_mean_value_s"] * 1e3, "tokens_per_s_per_gpu": p["output_tokens_per_s_per_gpu"],
                     "usd_per_1m_output_tokens": p["cost_usd_per_1m_output_tokens"] if p["usd_per_hour"] else np.nan,
                     "note": "" if p["usd_per_hour"] else f"{sel.gpu} has no price in its profile"})
    df = pd.DataFrame(rows)
    tables.show(df.round(3), "learn_distillation", "ldist", cells=("role", "note"))
    cost = df["usd_per_1m_output_tokens"] if "usd_per_1m_output_tokens" in df else pd.Series(dtype=float)
    if len(cost) == 2 and cost.gt(0).all() and np.isfinite(cost).all():
        ratio = cost.iloc[0] / cost.iloc[1]
        st.markdown(t("On {gpu} (bf16 weights, batch {batch}, each on the fewest GPUs that hold it) the student is "
                      "**{ratio:,.1f}x cheaper per token**; whether it is good enough is a question of quality, which "
                      "this planner does not model.").format(gpu=sel.gpu, batch=sel.batch, ratio=ratio))
    elif "gpus" in df and df["gpus"].notna().all():  # both fit, but the GPU has no price
        st.caption(t("{gpu} has no price in its profile (profiles/gpus): no cost per token to compare.").format(gpu=sel.gpu))


def serving(sel: Selection, p: dict) -> None:
    st.header(t("6. Serving well: cost, throughput, latency"))
    st.markdown(t("More requests for less money, each next token delivered fast. For this plan:"))
    c = st.columns(3)
    cost = p["cost_usd_per_1m_output_tokens"] if p["usd_per_hour"] else 0.0
    c[0].metric(t("Cost"), (t("{usd} / 1M output tokens").format(usd=fmt.usd(cost)) if cost else fmt.usd(cost)))
    c[1].metric(t("Throughput"), fmt.rate(p["requests_per_s"], "requests", 2))
    c[2].metric(t("Latency"), t("{ms} per token").format(ms=fmt.ms(p["tpot_s"])))
    st.caption(t("The Trade-offs page shows how batch size trades one against the others."))


@st.cache_data(show_spinner=False, max_entries=64)
def _stopping(model: str, text: str, gpu: str, tp: int, weights: str, kv_dtype: str, prompt: int, output: int,
              clients: int) -> dict:
    """planner.traffic.stopping_example for the sidebar's deployment (vLLM, paged KV), cap = 2 x output."""
    plan = api.build_plan(core.spec(model, text), gpu, Deployment(weights=weights, kv_dtype=kv_dtype, tp=tp))
    return stopping_example(plan, prompt, output, clients, 2 * output)


def stopping(sel: Selection) -> None:
    st.header(t("7. How decoding stops"))
    st.markdown(t("A request ends when the model emits its end-of-sequence token (**EOS**) or when it reaches the "
                "length the client allowed (**max_tokens**, the cap). Nobody knows in advance where EOS will come, "
                "so output lengths vary; the cap truncates their distribution. Two consequences for planning: the "
                "slowest requests are the long ones, so the cap sets the tail latency (p99), and an engine that "
                "reserves KV for a whole request at admission (TensorRT-LLM's GUARANTEED_NO_EVICT scheduler, "
                "Hugging Face's static cache) must reserve prompt + max_tokens, not the length the request turns "
                "out to have. vLLM and SGLang grow each request's KV block by block instead."))
    clients = min(sel.batch, 16)
    prompt, output = min(sel.prompt, STOP_EXAMPLE_MAX[0]), min(sel.output, STOP_EXAMPLE_MAX[1])
    if sel.engine == "transformers" or (prompt, output) != (sel.prompt, sel.output):
        st.caption(t("The example simulates the paged engine (vLLM) with mean lengths of at most {prompt:,} + "
                     "{output:,} tokens, to stay quick.").format(prompt=STOP_EXAMPLE_MAX[0], output=STOP_EXAMPLE_MAX[1]))
    r = _stopping(sel.model, sel.text, sel.gpu, sel.tp, sel.weights, sel.kv_dtype, prompt, output, clients)
    eos, cap = r["eos"], r["capped"]
    rows = [{"stops at": "EOS only", "mean_output_tokens": eos["output_mean_tokens"], "longest_output": eos[
        "output_max_tokens"], "e2e_p50_s": eos["e2e_p50_s"], "e2e_p99_s": eos["e2e_p99_s"]},
            {"stops at": f"EOS or max_tokens = {2 * output:,}", "mean_output_tokens": cap["output_mean_tokens"],
             "longest_output": cap["output_max_tokens"], "e2e_p50_s": cap["e2e_p50_s"], "e2e_p99_s": cap["e2e_p99_s"]}]
    tables.show(pd.DataFrame(rows).round(3), "learn_stopping", "lstop", cells=("stops at",))
    st.markdown(t("Simulated by the core (planner.traffic.stopping_example): {clients} clients, exponential prompt and "
                  "output lengths with means {prompt:,} and {output:,} tokens. The cap stops {share:.0%} of the "
                  "requests early; p99 end-to-end goes from **{eos_p99}** to **{cap_p99}** while p50 barely moves. "
                  "Reserved whole, each request holds {reserved} of KV per GPU (({prompt:,} + {cap:,}) tokens x "
                  "{per_token:,.0f} B), against {used} for the mean request it actually serves.").format(
                      clients=clients, prompt=prompt, output=output, share=cap["capped_share"],
                      eos_p99=fmt.ms(eos["e2e_p99_s"]), cap_p99=fmt.ms(cap["e2e_p99_s"]),
                      reserved=fmt.gib(r["reserved_bytes_per_request"]), cap=2 * output,
                      per_token=r["kv_bytes_per_token"], used=fmt.gib(r["mean_used_bytes_per_request"])))
    st.caption(t("The same cap is --max-tokens in `python -m planner slo` and max_tokens on the Capacity page. Sources: "
               "TensorRT-LLM docs, 'Useful Runtime Options' (capacity scheduler policy GUARANTEED_NO_EVICT); "
               "transformers docs, 'Caching' (StaticCache allocates max_cache_len up front)."))


QAT_ROWS = (
    ("PTQ: GPTQ", "gptq-4bit-g128", "calibration: a few hundred samples, layer by layer; ~4 GPU-hours on one A100 "
     "for 175B (Frantar et al. 2022)"),
    ("PTQ: AWQ", "awq-4bit-g128", "calibration: a small sample, no back-propagation; minutes to hours on one GPU "
     "(Lin et al. 2023)"),
    ("PTQ: bitsandbytes NF4", "bnb-nf4", "none: quantized on the fly at load time (Dettmers et al. 2023, QLoRA)"),
    ("QAT: Gemma 3 QAT Q4_0", "Q4_0", "a training run with fake-quantized weights (~5,000 steps against the bf16 "
     "model's probabilities: Google, 'Gemma 3 QAT Models', 2025)"),
)


def qat(sel: Selection) -> None:
    st.header(t("8. Quantization-aware training vs post-training quantization"))
    st.markdown(
        t("**Post-training quantization (PTQ)** takes a finished model and rounds its weights: GPTQ and AWQ fit the "
        "rounding to a small calibration set in minutes to hours on one GPU; bitsandbytes rounds on the fly as the "
        "model loads. It is cheap and it is what most LLM checkpoints use; at 4 bits it loses a little quality, "
        "more on small models. **Quantization-aware training (QAT)** trains (or fine-tunes) the model with "
        "fake-quantization ops in the forward pass, so the weights learn to survive the rounding. It costs a "
        "training run, so model makers do it, not users: Meta's Llama 3.2 1B/3B QLoRA checkpoints (QAT plus LoRA "
        "adapters: 4-bit group-wise weights, 8-bit dynamic activations; Meta, 'Introducing quantized Llama "
        "models', Oct 2024, and the model cards meta-llama/Llama-3.2-1B-Instruct-QLORA_INT4_EO8), and Google's "
        "Gemma 3 QAT checkpoints (int4 Q4_0; Google reports the perplexity drop of Q4_0 cut by 54 %: model cards "
        "google/gemma-3-27b-it-qat-q4_0-gguf). QAT keeps more quality at the same bits; PTQ is what you can do "
        "yourself today."))
    _, rows = format_rows(sel, QAT_ROWS, ("method", "stored as", "what it costs to make"))
    tables.show(rows, "learn_qat", "lqat")
    st.caption(t("Bytes of {model} from the core's format table (profiles/weight_formats.json). For memory and speed a "
                 "QAT checkpoint is planned like any checkpoint with the same storage format: a QAT int4 Q4_0 file has "
                 "the bytes of any Q4_0 file. Training changes which values the 4-bit codes hold, not how many bytes "
                 "they take.").format(model=fmt.plain(sel.model)))


def body(sel: Selection) -> None:
    st.caption(page.describe(sel))
    p = core.plan(sel.model, sel.text, *sel.dep, sel.batch, sel.prompt, sel.output)
    r = core.roofline(sel.model, sel.text, *sel.dep)
    ins = core.inspect(sel.model, sel.text, sel.weights, sel.kv, sel.engine, sel.prompt + sel.output, sel.batch)
    page.guarded(lambda: generation(sel, p, r))
    page.guarded(lambda: kv_cache(sel, p, ins))
    page.guarded(lambda: attention(sel, ins))
    page.guarded(lambda: quantization(sel))
    page.guarded(lambda: distillation(sel))
    page.guarded(lambda: serving(sel, p))
    page.guarded(lambda: stopping(sel))
    page.guarded(lambda: qat(sel))


page.run(body, t("Learn"), t("How LLM inference works, told with the numbers of the plan in the sidebar."))
