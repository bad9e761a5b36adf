import { scaledAlertRules } from './prometheus';

const rules = `groups:
  - name: sluice
    rules:
      - alert: A
        expr: sum by (service, code) (rate(x_total[5m])) > 1
        for: 10m
        labels: { severity: warning }
        annotations:
          summary: "{{ $labels.service }} over 5m for 10m"
      - alert: B
        expr: up{job="sluice"} == 0
        for: 2m
`;

test('scaledAlertRules changes every for: and every range, and nothing else', () => {
  expect(scaledAlertRules(rules, { forDuration: '10s', range: '20s' })).toBe(
    rules.replace('for: 10m', 'for: 10s').replace('for: 2m', 'for: 10s').replace('rate(x_total[5m])', 'rate(x_total[20s])'),
  );
});
