# Stand-in for the prom/prometheus image, for machines that cannot pull it (no image
# registry): tools/compose/setup.sh builds it only then, and checks that Debian's
# prometheus package is the tag's release. As in the real image: /bin/prometheus as the
# entry point, run by nobody, the data in /prometheus, the configuration in /etc/prometheus.
ARG BASE=streamrules-standin/bookworm
FROM ${BASE}
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
