// UI texts: zh-CN first, English by the switch. Every label of the pages lives here.
window.I18N = {
  zh: {
    title: "平急转换指挥平台", login: "登录", logout: "退出", username: "用户名", password: "密码",
    orgTree: "组织架构", wartimeGroups: "战时工作组", skillsOnHand: "可用技能（当前可调用人数）", people: "人员",
    search: "搜索姓名", allKinds: "全部类别", allSkills: "全部技能", partyAny: "党员/非党员", partyYes: "党员",
    partyNo: "非党员", availAny: "全部状态", availYes: "当前可用", availNo: "当前不可用", filter: "筛选",
    prev: "上一页", next: "下一页", page: "第 {page} 页 / 共 {pages} 页（{total} 人）",
    communities: "社区", total: "总人数", available: "当前可用", unavailable: "不可用", deployed: "已派出",
    partyMembers: "党员", squads: "突击队", volunteerTeams: "志愿服务队", noLeader: "缺组长的战时组",
    group: "工作组", members: "人数", leaders: "组长",
    name: "姓名", phone: "手机号", kind: "类别", community: "社区", skills: "技能", status: "状态",
    yes: "是", no: "否", loginFailed: "登录失败", loading: "加载中…", networkError: "网络错误，请重试",
  },
  en: {
    title: "Emergency switch command", login: "Log in", logout: "Log out", username: "Username", password: "Password",
    orgTree: "Org tree", wartimeGroups: "Wartime work groups", skillsOnHand: "Skills on hand (available now)", people: "People",
    search: "Search name", allKinds: "All kinds", allSkills: "All skills", partyAny: "Party: any", partyYes: "Party members",
    partyNo: "Non-members", availAny: "Any status", availYes: "Available now", availNo: "Not available", filter: "Filter",
    prev: "Previous", next: "Next", page: "Page {page} of {pages} ({total} people)",
    communities: "Communities", total: "People", available: "Available now", unavailable: "Unavailable", deployed: "Deployed",
    partyMembers: "Party members", squads: "Commando squads", volunteerTeams: "Volunteer teams", noLeader: "Wartime groups without a leader",
    group: "Group", members: "People", leaders: "Leaders",
    name: "Name", phone: "Phone", kind: "Kind", community: "Community", skills: "Skills", status: "Status",
    yes: "yes", no: "no", loginFailed: "Login failed", loading: "Loading…", networkError: "Network error; try again",
  },
};
