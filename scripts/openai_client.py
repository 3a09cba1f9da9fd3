"""Talks to `pedals gateway` with the official OpenAI Python client, as a user's program does.

    .venv-openai/bin/python scripts/openai_client.py BASE_URL API_KEY MODEL PROMPT MAX_TOKENS SEED

Lists the models, asks for one chat completion and streams the same one, checks that a wrong
key is refused, and prints one JSON document of what came back (market-cli's split-inference
test compares it with local generation).
"""

import json
import sys

import openai


def main() -> None:
    base_url, key, model, prompt, max_tokens, seed = sys.argv[1:7]
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
    messages = [{"role": "user", "content": prompt}]
    params = dict(model=model, messages=messages, max_tokens=int(max_tokens),
                  temperature=0.8, top_p=0.95, seed=int(seed))
    models = [m.id for m in client.models.list()]
    whole = client.chat.completions.create(**params)
    pieces = []
    usage = None
    finish = None
    for chunk in client.chat.completions.create(**params, stream=True,
                                                stream_options={"include_usage": True}):
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    refused = None
    try:
        openai.OpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0).models.list()
    except openai.AuthenticationError as e:
        refused = e.status_code
    print(json.dumps({
        "models": models,
        "chat": whole.choices[0].message.content,
        "chat_finish": whole.choices[0].finish_reason,
        "chat_usage": whole.usage.model_dump(),
        "stream": "".join(pieces),
        "stream_chunks": len(pieces),
        "stream_finish": finish,
        "stream_usage": usage,
        "wrong_key_status": refused,
    }))


if __name__ == "__main__":
    main()
