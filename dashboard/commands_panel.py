"""The serve and benchmark commands of the sidebar's plan (planner.commands), for the Plan page.

``render(sel)`` reads the same Selection the plan page does. The Selection names the KV layout, not the
serving engine, so the panel asks which engine to write the command for; the command pins the settings
the plan was computed with (the engine version's memory fraction and token budget) and the benchmark
sends the plan's traffic: ``sel.batch`` clients of ``sel.prompt`` + ``sel.output`` tokens.
"""

from __future__ import annotations

import streamlit as st

from dashboard import core
from dashboard.fmt import plain
from dashboard.i18n import t
from dashboard.state import Selection
from planner import commands
from planner.errors import PlannerInputError
from planner.memory import SERVERS, Deployment


def build(sel: Selection, server: str) -> commands.Commands:
    """The core's commands for the selection served by ``server`` (an uploaded config: its spec, by name)."""
    model = core.spec(sel.model, sel.text) if sel.text else sel.model
    layout = "transformers" if sel.engine == "transformers" else "paged"
    dep = Deployment(weights=sel.weights, kv_dtype=sel.kv_dtype, engine=layout, tp=sel.tp, pp=sel.pp, server=server)
    return commands.commands(model, sel.gpu, dep, sel.prompt, sel.output, sel.batch)


def render(sel: Selection) -> None:
    st.subheader(t("Run it"))
    server = st.selectbox(t("Serving engine"), SERVERS, key="cmd_engine", index=SERVERS.index(sel.server),
                          help=t("the command and its benchmark for this engine's newest release in profiles/engines"))
    try:
        c = build(sel, server)
    except PlannerInputError as e:
        st.info(t("No command for this plan: {error}").format(error=plain(e)))
        return
    st.code(c.serve.shell, language="bash")
    st.caption(t("Serve {model} with {engine} {version}: the memory fraction, token budget and max_num_seqs the plan "
                 "was computed with, pinned. ").format(model=plain(c.model_id), engine=c.engine, version=c.version)
               + " ".join(plain(n) for n in c.serve.notes))
    st.code(c.bench.shell, language="bash")
    st.caption(t("The benchmark that checks the plan: {batch} clients, {prompt:,} + {output:,} tokens, EOS ignored so "
                 "every output runs its length. ").format(batch=sel.batch, prompt=sel.prompt, output=sel.output)
               + " ".join(plain(n) for n in c.bench.notes))
