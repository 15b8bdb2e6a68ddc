"""Tiny config.json dicts, one per layer kind and family, small enough to build and run on the CPU.

They are real transformers configs (``model_type`` picks the class), so the same dicts feed the
meta-device parameter check, the CPU forward-pass KV check and the profiler's CPU tests.
"""

BASE = {"vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
        "num_attention_heads": 4, "max_position_embeddings": 256, "torch_dtype": "float32"}

TINY = {
    "llama-gqa": {**BASE, "model_type": "llama", "architectures": ["LlamaForCausalLM"], "num_key_value_heads": 2},
    "llama-mha": {**BASE, "model_type": "llama", "architectures": ["LlamaForCausalLM"], "num_key_value_heads": 4},
    "llama-mqa": {**BASE, "model_type": "llama", "architectures": ["LlamaForCausalLM"], "num_key_value_heads": 1},
    "qwen3-headdim": {**BASE, "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "num_key_value_heads": 2,
                      "head_dim": 32, "tie_word_embeddings": True},
    "qwen2-bias": {**BASE, "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "num_key_value_heads": 2},
    "mistral-sliding": {**BASE, "model_type": "mistral", "architectures": ["MistralForCausalLM"],
                        "num_key_value_heads": 2, "sliding_window": 8},
    "gemma2-interleaved": {**BASE, "model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"],
                           "num_key_value_heads": 2, "head_dim": 16, "sliding_window": 8, "num_hidden_layers": 4},
    "gemma3-interleaved": {**BASE, "model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"],
                           "num_key_value_heads": 2, "head_dim": 16, "sliding_window": 8, "num_hidden_layers": 6,
                           "sliding_window_pattern": 3},
    "mixtral-moe": {**BASE, "model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "num_key_value_heads": 2,
                    "num_local_experts": 4, "num_experts_per_tok": 2},
    "qwen3-moe": {**BASE, "model_type": "qwen3_moe", "architectures": ["Qwen3MoeForCausalLM"], "num_key_value_heads": 2,
                  "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "head_dim": 16},
    "deepseek-mla": {**BASE, "model_type": "deepseek_v2", "architectures": ["DeepseekV2ForCausalLM"],
                     "num_key_value_heads": 4, "kv_lora_rank": 32, "q_lora_rank": None, "qk_rope_head_dim": 8,
                     "qk_nope_head_dim": 16, "v_head_dim": 16, "n_routed_experts": 4, "num_experts_per_tok": 2,
                     "moe_intermediate_size": 32, "n_shared_experts": 1, "first_k_dense_replace": 1,
                     "num_hidden_layers": 3, "topk_method": "greedy", "n_group": 1, "topk_group": 1},
    "falcon-mqa": {"model_type": "falcon", "architectures": ["FalconForCausalLM"], "vocab_size": 128, "hidden_size": 64,
                   "num_hidden_layers": 2, "num_attention_heads": 4, "multi_query": True, "parallel_attn": True,
                   "bias": False, "new_decoder_architecture": False, "torch_dtype": "float32"},
    "gpt2-mha": {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 128, "n_embd": 64,
                 "n_layer": 2, "n_head": 4, "n_positions": 256, "torch_dtype": "float32"},
    "opt-proj": {"model_type": "opt", "architectures": ["OPTForCausalLM"], "vocab_size": 128, "hidden_size": 64,
                 "ffn_dim": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 256,
                 "word_embed_proj_dim": 32, "do_layer_norm_before": False, "torch_dtype": "float32"},
}
