"""A tiny random BERT encoder (2 layers, hidden size 32) with a WordPiece tokenizer, built here,
and a models config that registers it as ``kind: encoder`` beside the tiny Llamas."""

from __future__ import annotations

from pathlib import Path

TINY_ENCODER_ID = "tiny-bert"


def _corpus() -> list[str]:
    from core.data import synthetic

    texts = []
    for generator in ("client_messages", "fin_sentiment"):
        for items in synthetic.generate_splits(generator, 3, {"train": 300}).values():
            texts += [item.fields["text"] for item in items]
    return texts


def build_tiny_encoder(directory: Path) -> Path:
    """A 2-layer random BERT and a ~900-token WordPiece tokenizer saved in HF layout."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        _corpus(), trainers.WordPieceTrainer(vocab_size=900, special_tokens=specials)
    )
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=256,
        pad_token_id=fast.pad_token_id,
    )
    directory.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


def add_encoder(config_path: Path, directory: Path) -> Path:
    """Append the tiny encoder to the models config at ``config_path`` (written by conftest)."""
    import yaml

    config = yaml.safe_load(config_path.read_text())
    config["models"].append(
        {
            "id": TINY_ENCODER_ID,
            "display_name": "Tiny BERT (encoder)",
            "kind": "encoder",
            "source": {"kind": "local", "path": str(directory)},
            "params": 60000,
            "license": "test",
        }
    )
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path
