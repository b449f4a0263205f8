"""The API other handler families build on: interfaces, family state, hooks, handlers."""
from __future__ import annotations

from dataclasses import dataclass, field

from testbed.emulator import Emulator, FamilyState, HandlerTable, HwClass, VppRetval
from testbed.emulator.handlers import discover
from vppagent.vpp.retvals import Retval


@dataclass
class CounterState(FamilyState):
    deleted: list[int] = field(default_factory=list)
    admin: list[tuple[int, bool]] = field(default_factory=list)
    set_up: bool = False

    def setup(self, state) -> None:
        self.set_up = True

    def on_interface_deleted(self, state, iface) -> None:
        self.deleted.append(iface.sw_if_index)

    def on_admin_change(self, state, iface, up) -> None:
        self.admin.append((iface.sw_if_index, up))


def test_family_creates_interfaces_and_hears_about_them(emu, vpp):
    with emu.locked():
        st = emu.state(CounterState)
        assert st.set_up and emu.state(CounterState) is st
        wg = emu.interfaces.add("wg0", "WireGuard", hw_class=HwClass.IP, owner="wireguard",
                                link_up=True)
        assert wg.sw_if_index == 1 and wg.mac is None
    (d,) = vpp.api.sw_interface_dump(sw_if_index=wg.sw_if_index)
    assert (d.interface_name, d.interface_dev_type, int(d.flags)) == ("wg0", "WireGuard", 2)
    vpp.api.sw_interface_set_flags(sw_if_index=wg.sw_if_index, flags=1)
    with emu.locked():
        emu.interfaces.remove(wg.sw_if_index)
        assert st.admin == [(1, True), (1, False)] and st.deleted == [1]
        try:
            emu.interfaces.require(1)
        except VppRetval as e:
            assert e.retval == Retval.INVALID_SW_IF_INDEX
        else:
            raise AssertionError("require() of a deleted interface must fail")
    emu.restart()
    with emu.locked():
        assert emu.state(CounterState) is not st  # family state does not survive a restart


def test_a_handler_table_plugs_in(sock_dir, definitions, connect):
    table = HandlerTable("demo")

    @table.handler("want_interface_events")
    def want(emu, mp):
        if mp.pid == 0:
            raise VppRetval(Retval.INVALID_VALUE, "pid 0")
        emu.state(CounterState).admin.append((mp.pid, bool(mp.enable_disable)))
        return {}

    dispatch = discover()
    dispatch.add(table)
    with Emulator(sock_dir / "api.sock", definitions=definitions, dispatch=dispatch) as emu:
        vpp = connect(emu)
        assert vpp.api.want_interface_events(enable_disable=1, pid=42).retval == 0
        assert vpp.api.want_interface_events(enable_disable=1, pid=0).retval == Retval.INVALID_VALUE
        with emu.locked():
            assert emu.state(CounterState).admin == [(42, True)]
        assert emu.handler_errors == []
