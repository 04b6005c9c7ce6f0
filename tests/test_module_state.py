"""Module state dicts with shared submodules: every name is listed, as in PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from convprop import nn

torch = pytest.importorskip("torch")


def test_shared_module_state_dict_lists_every_name():
    lin = nn.Linear(2, 2)
    m = nn.Sequential(lin, lin)
    tl = torch.nn.Linear(2, 2)
    tm = torch.nn.Sequential(tl, tl)
    assert list(m.state_dict()) == list(tm.state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias"]
    # parameters() still yields each shared parameter once, as torch does
    assert len(list(m.parameters())) == len(list(tm.parameters())) == 2
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in tm.named_parameters()]

    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    np.testing.assert_array_equal(lin.weight.data, tl.weight.detach().numpy())
    np.testing.assert_array_equal(lin.bias.data, tl.bias.detach().numpy())
    # and the other way round
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})


def test_shared_nested_module_with_buffers_matches_torch_keys():
    bn = nn.BatchNorm1d(3)
    m = nn.Sequential(nn.Sequential(bn, nn.Linear(3, 3)), bn)
    tbn = torch.nn.BatchNorm1d(3)
    tm = torch.nn.Sequential(torch.nn.Sequential(tbn, torch.nn.Linear(3, 3)), tbn)
    assert list(m.state_dict()) == list(tm.state_dict())
    m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
