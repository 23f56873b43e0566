"""WebShop (Yao et al., 2022): a shopping website as a text environment, offline and pip-installable.

Modules, from data to environment:

- :mod:`.data`: the ``Product``, ``Review`` and ``Goal`` records;
- :mod:`.generator`: the embedded seeded catalogue (products in look-alike families, goals);
- :mod:`.real_data`: the loader of the original WebShop files and its goal order;
- :mod:`.search`: the BM25 search engine (bm25s);
- :mod:`.catalogue`: products + goals + splits + engine, shared per process;
- :mod:`.reward`: the original reward as pure functions;
- :mod:`.pages`: page states, their text observations and clickables;
- :mod:`.expert`: the scripted expert;
- :mod:`.env`: ``WebShopEnv``, registered as ``webshop``.
"""

from agentgym.environments.webshop.env import WebShopEnv
from agentgym.environments.webshop.reward import RewardBreakdown, purchase_reward

__all__ = ["RewardBreakdown", "WebShopEnv", "purchase_reward"]
