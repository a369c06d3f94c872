from tests.mcp.conftest import answer, connected, writes
from tests.actions._org import new_lead, new_contact
import json

async def test_explore(build, client, emulator, clock, run_ledger):
    for i in range(5):
        await new_lead(client, name=f"Gone {i}", status="Bad Fit", url=f"https://x{i}.com")
    server = build("read", max_results=2, default_results=2)
    async with connected(server) as s:
        r = await s.call_tool("search_leads", {})
        print(r.is_error, answer(r)["count"], answer(r)["limit"])
    server = build("read", max_results=2, default_results=2, config={"tools": {"search_leads": {"inputs": {"limit": "disabled", "fields": {"default": ["display_name", "url"]}}}}})
    async with connected(server) as s:
        r = await s.call_tool("search_leads", {})
        print(r.is_error, answer(r)["count"], answer(r)["limit"], answer(r)["records"][0])
        tools = (await s.list_tools()).tools
        print(type(tools[0]), tools[0].annotations)
