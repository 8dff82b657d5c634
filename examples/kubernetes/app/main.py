# The support assistant: a plain HTTP service that answers with the official OpenAI SDK.
# Nothing here knows about ai-envelope: OpenAI() reads OPENAI_BASE_URL and OPENAI_API_KEY from the
# environment, which the ai-envelope webhook sets when it injects the sidecar.
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from openai import OpenAI

client = OpenAI()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        answer = client.responses.create(model="gpt-4.1-mini", input=body.get("question", ""))
        out = json.dumps({"answer": answer.output_text}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(out)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
